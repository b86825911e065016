/**
 * What one transformation run costs (docs/transformations.md, "Cost"): the transformer as the worker
 * uses it (one sandbox thread, the default limits), on a 1 KB event, for the passthrough and the Slack
 * template. Reports, per run: the wall time of one run awaited alone (latency), and the wall and
 * process CPU time (both threads) per run with many in flight (throughput).
 *
 *   npm run bench:transformations [-- runs]
 */
import { createTransformer } from '../src/delivery/transformation/transformer.ts';
import { renderTemplate } from '../src/delivery/templates/catalog.ts';

const runs = Number(process.argv[2] ?? 2000);
const transformer = createTransformer({
  timeoutMs: 50,
  memoryBytes: 16 * 1024 * 1024,
  maxBodyBytes: 1024 * 1024,
  threads: 1,
  maxWaitMs: 60_000,
  checkMaxWaitMs: 60_000,
});
const data = {
  user_id: 'u-42',
  email: 'maria@example.com',
  plan: 'pro',
  amount: 1500,
  items: Array.from({ length: 12 }, (_, i) => ({ sku: `sku-${i}`, qty: i })),
};
const event = { id: '0190c3a4-5b6e-7c8d-9e0f-112233445566', type: 'order.placed', createdAt: new Date(), dataJson: JSON.stringify(data) };
const url = 'http://127.0.0.1:9/hooks';

async function measure(name: string, source: string): Promise<void> {
  for (let i = 0; i < 200; i++) await transformer.apply('warm', source, event, url);
  let started = performance.now();
  for (let i = 0; i < runs / 4; i++) {
    const r = await transformer.apply('k', source, event, url);
    if (r.kind !== 'send') throw new Error(`${name}: ${JSON.stringify(r)}`);
  }
  const latencyUs = ((performance.now() - started) / (runs / 4)) * 1000;
  const cpu = process.cpuUsage();
  started = performance.now();
  await Promise.all(Array.from({ length: runs }, (_, i) => transformer.apply(`k${i % 50}`, source, event, url)));
  const wallUs = ((performance.now() - started) / runs) * 1000;
  const used = process.cpuUsage(cpu);
  const cpuUs = (used.user + used.system) / runs;
  console.log(
    `${name.padEnd(12)} latency ${latencyUs.toFixed(0).padStart(5)} µs   throughput: ${wallUs.toFixed(0).padStart(4)} µs wall, ${cpuUs.toFixed(0).padStart(4)} µs CPU per run (${Math.round(1e6 / wallUs)} runs/s)`,
  );
}

console.log(`${runs} runs each, event data ${event.dataJson.length} bytes, 1 sandbox thread`);
await measure('passthrough', renderTemplate('passthrough', {}));
await measure('slack', renderTemplate('slack', {}));
await transformer.close();
