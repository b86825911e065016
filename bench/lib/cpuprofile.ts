// Reads a V8 .cpuprofile (node --cpu-prof) and sums self time per function and per area
// (Carteiro's code, postgres.js, undici, Node internals, GC, idle), for the profile reading in
// docs/performance.md.
import { readFileSync } from 'node:fs';

type CallFrame = { functionName: string; url: string; lineNumber: number; columnNumber: number };
type ProfileNode = { id: number; callFrame: CallFrame; hitCount?: number; children?: number[] };
type CpuProfile = { nodes: ProfileNode[]; startTime: number; endTime: number; samples?: number[]; timeDeltas?: number[] };

export type SelfTimeRow = { name: string; where: string; area: string; selfMs: number; share: number };
export type ProfileSummary = { totalMs: number; busyMs: number; top: SelfTimeRow[]; areas: { area: string; selfMs: number; share: number }[] };

export function areaOf(url: string, fn: string): string {
  if (fn === '(idle)') return 'idle';
  if (fn === '(garbage collector)') return 'GC';
  if (fn === '(program)') return 'V8 (program)';
  if (url.includes('node_modules/postgres/')) return 'postgres.js';
  if (url.includes('node_modules/undici/')) return 'undici';
  if (url.includes('node_modules/pino') || url.includes('node_modules/thread-stream')) return 'pino';
  if (url.includes('node_modules/ioredis') || url.includes('node_modules/bullmq')) return 'ioredis/bullmq';
  if (url.includes('node_modules/')) return 'other node_modules';
  if (url.includes('/src/')) return 'carteiro src/' + (url.split('/src/')[1]?.split('/')[0] ?? '');
  if (url.includes('internal/modules') || url.includes('amaro') || url.includes('internal/bootstrap')) return 'module loading (start-up)';
  if (url.includes('internal/crypto')) return 'node crypto (HMAC)';
  if (url.includes('internal/streams') || url === 'node:net' || url === 'node:stream' || url.includes('internal/stream_base')) return 'node streams/sockets';
  if (url.startsWith('node:internal/')) return `node:internal/${url.slice(14).split('/')[0]}`;
  if (url.startsWith('node:')) return url;
  if (url === '') return 'native (no JS source)';
  return 'other';
}

export function summarizeProfile(path: string, topN = 25): ProfileSummary {
  const p = JSON.parse(readFileSync(path, 'utf8')) as CpuProfile;
  const byId = new Map(p.nodes.map((n) => [n.id, n]));
  // Self time per node from samples × time deltas (more exact than hitCount × interval). A gap far
  // longer than the sampling interval (the process was paused with SIGSTOP) is not charged to anyone.
  const self = new Map<number, number>();
  if (p.samples && p.timeDeltas) {
    for (let i = 0; i < p.samples.length; i++) {
      const raw = (p.timeDeltas[i + 1] ?? 0) / 1000;
      const dt = raw > 100 ? 0 : raw;
      const id = p.samples[i] as number;
      self.set(id, (self.get(id) ?? 0) + dt);
    }
  } else {
    const interval =
      (p.endTime - p.startTime) /
      1000 /
      Math.max(
        1,
        p.nodes.reduce((a, n) => a + (n.hitCount ?? 0), 0),
      );
    for (const n of p.nodes) self.set(n.id, (n.hitCount ?? 0) * interval);
  }
  const byFn = new Map<string, SelfTimeRow>();
  const byArea = new Map<string, number>();
  let total = 0;
  let idle = 0;
  for (const [id, ms] of self) {
    const n = byId.get(id);
    if (!n) continue;
    const cf = n.callFrame;
    const name = cf.functionName || '(anonymous)';
    const file = cf.url.replace(/^file:\/\//, '').replace(/^.*\/(src|node_modules)\//, '$1/');
    const where = file ? `${file}:${cf.lineNumber + 1}` : '';
    const area = areaOf(cf.url, name);
    total += ms;
    if (area === 'idle') idle += ms;
    byArea.set(area, (byArea.get(area) ?? 0) + ms);
    const key = `${name}@${where}`;
    const row = byFn.get(key) ?? { name, where, area, selfMs: 0, share: 0 };
    row.selfMs += ms;
    byFn.set(key, row);
  }
  const busy = total - idle;
  const top = [...byFn.values()]
    .filter((r) => r.area !== 'idle')
    .sort((a, b) => b.selfMs - a.selfMs)
    .slice(0, topN)
    .map((r) => ({ ...r, selfMs: round(r.selfMs), share: round((r.selfMs / busy) * 100) }));
  const areas = [...byArea]
    .filter(([a]) => a !== 'idle')
    .sort((a, b) => b[1] - a[1])
    .map(([area, ms]) => ({ area, selfMs: round(ms), share: round((ms / busy) * 100) }));
  return { totalMs: round(total), busyMs: round(busy), top, areas };
}

const round = (n: number): number => Math.round(n * 10) / 10;

// `node bench/lib/cpuprofile.ts file.cpuprofile [topN]` prints the summary.
if (import.meta.url === `file://${process.argv[1]}`) {
  const file = process.argv[2];
  if (!file) {
    console.error('usage: node bench/lib/cpuprofile.ts <file.cpuprofile> [topN]');
    process.exit(2);
  }
  const s = summarizeProfile(file, Number(process.argv[3] ?? 30));
  console.log(`profile ${file}: ${s.totalMs} ms sampled, ${s.busyMs} ms busy (not idle)\n`);
  console.log('by area (self time, % of busy):');
  for (const a of s.areas) console.log(`  ${a.area.padEnd(28)} ${String(a.selfMs).padStart(9)} ms  ${String(a.share).padStart(5)} %`);
  console.log('\ntop functions by self time:');
  for (const r of s.top) console.log(`  ${String(r.share).padStart(5)} %  ${String(r.selfMs).padStart(8)} ms  ${r.name}  ${r.where}`);
}
