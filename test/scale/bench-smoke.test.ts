/**
 * `npm run bench` end to end, at toy sizes: the ceiling, a latency window and the scale section
 * (CPU-bound and against a slow receiver) run against real Postgres, with Carteiro as real processes
 * and the receiver in its own. This checks the tooling works and its report is whole (every event
 * delivered, the checkpoint accounting present), never its timings: those are the bench's to print.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { runScript } from '../support/processes.ts';
import { DATABASE_URL, REDIS_URL } from '../support/carteiro.ts';

const RUN = fileURLToPath(new URL('../../bench/run.ts', import.meta.url));

type Figure = { section: string; name: string; value: number };
type Report = {
  figures: Figure[];
  /** Sections that could not be measured, with why. */
  errors: Record<string, string>;
  details: {
    latency?: { accepted: number; delivered: number; checkpoints: { forcedBefore: boolean; started?: number; syncMs?: number } };
    drains?: { expected: number; receiver: { uniqueIds: number }; drain: { timedOut: boolean } }[];
    scaleSlowReceiver?: { runs: { workers: number; perSecond: number }[] };
  };
};

test('npm run bench at toy sizes reports every section it ran, whole', {
  skip: !DATABASE_URL && 'the bench measures Carteiro on real Postgres (DATABASE_URL)',
}, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'carteiro-bench-smoke-'));
  const out = join(dir, 'report.json');
  try {
    const args = [
      '--quick',
      '--only',
      'ceiling,latency,scale',
      '--ceiling-requests',
      '2000',
      '--rate',
      '200',
      '--latency-seconds',
      '2',
      '--sweep-rates',
      '0',
      '--events',
      '2000',
      '--scale',
      '1,2',
      '--scale-slow-ms',
      '100',
      '--scale-slow-events',
      '200',
      '--out',
      out,
    ];
    const { code, output: log } = await runScript(RUN, args, { ...process.env, DATABASE_URL: DATABASE_URL as string, ...(REDIS_URL ? { REDIS_URL } : {}) });
    assert.equal(code, 0, log);

    const report = JSON.parse(readFileSync(out, 'utf8')) as Report;
    assert.deepEqual(report.errors, {}, log);
    const named = (section: string, part: string) => report.figures.find((f) => f.section === section && f.name.includes(part));
    assert.ok((named('ceiling', 'raw undici')?.value ?? 0) > 0, 'a ceiling was measured');

    const latency = report.details.latency;
    assert.ok(latency && latency.accepted > 0 && latency.delivered === latency.accepted, JSON.stringify(latency));
    assert.equal(typeof latency.checkpoints.forcedBefore, 'boolean');
    assert.equal(typeof latency.checkpoints.syncMs, 'number', 'the window says how much checkpoint fsync fell into it');

    const drains = report.details.drains ?? [];
    assert.equal(drains.length, 4, 'two CPU-bound drains and two against the slow receiver');
    for (const d of drains) {
      assert.equal(d.receiver.uniqueIds, d.expected);
      assert.equal(d.drain.timedOut, false);
    }
    assert.deepEqual(
      report.details.scaleSlowReceiver?.runs.map((r) => r.workers),
      [1, 2],
    );
    assert.ok(named('scale', '2 worker processes, receiver answering in 100 ms'), 'the slow-receiver figure is printed');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('the bench fills a backlog of large payloads within the API body limit, and a failed section still lets it finish', {
  skip: !DATABASE_URL && 'the bench measures Carteiro on real Postgres (DATABASE_URL)',
}, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'carteiro-bench-smoke-'));
  const env = { ...process.env, DATABASE_URL: DATABASE_URL as string, ...(REDIS_URL ? { REDIS_URL } : {}) };
  try {
    // 4 KB payloads: 1,000 of them would be a 4 MB request, over the API's 1 MiB body limit.
    const large = join(dir, 'large.json');
    const ok = await runScript(RUN, ['--only', 'sustained', '--fanout', '1', '--events', '1500', '--payload-bytes', '4096', '--out', large], env, {
      timeoutMs: 150_000,
    });
    assert.equal(ok.timedOut, false, ok.output);
    assert.equal(ok.code, 0, ok.output);
    const report = JSON.parse(readFileSync(large, 'utf8')) as Report;
    assert.deepEqual(report.errors, {}, ok.output);
    const [drain] = report.details.drains ?? [];
    assert.ok(drain && drain.receiver.uniqueIds === drain.expected && drain.expected === 1500, JSON.stringify(drain));

    // A payload no request can carry: the section fails, and the bench reports it and exits.
    const failed = join(dir, 'failed.json');
    const bad = await runScript(RUN, ['--only', 'sustained', '--fanout', '1', '--events', '3', '--payload-bytes', '2000000', '--out', failed], env, {
      timeoutMs: 60_000,
    });
    assert.equal(bad.timedOut, false, `the bench did not exit after a failed section:\n${bad.output}`);
    const failedReport = JSON.parse(readFileSync(failed, 'utf8')) as Report;
    assert.match(failedReport.errors.sustained ?? '', /413/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
