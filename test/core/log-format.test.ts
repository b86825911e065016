/** The default output: a person's on a terminal, JSON lines when asked for (or piped). */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { loadConfig } from '../../src/config/config.ts';
import { prettyLine } from '../../src/util/logger.ts';
import { testEnv } from '../support/carteiro.ts';

test('CARTEIRO_LOG_FORMAT chooses the format; LOG_LEVEL unset is info for JSON and warn for a person', () => {
  const { LOG_LEVEL: _, ...env } = testEnv();
  assert.deepEqual(
    [loadConfig({ ...env, CARTEIRO_LOG_FORMAT: 'json' }).logFormat, loadConfig({ ...env, CARTEIRO_LOG_FORMAT: 'json' }).logLevel],
    ['json', 'info'],
  );
  assert.deepEqual(
    [loadConfig({ ...env, CARTEIRO_LOG_FORMAT: 'pretty' }).logFormat, loadConfig({ ...env, CARTEIRO_LOG_FORMAT: 'pretty' }).logLevel],
    ['pretty', 'warn'],
  );
  assert.equal(loadConfig({ ...env, CARTEIRO_LOG_FORMAT: 'pretty', LOG_LEVEL: 'debug' }).logLevel, 'debug');
  // Tests run with stdout piped: auto means JSON.
  if (!process.stdout.isTTY) assert.equal(loadConfig(env).logFormat, 'json');
  assert.throws(() => loadConfig({ ...env, CARTEIRO_LOG_FORMAT: 'xml' }), /CARTEIRO_LOG_FORMAT/);
});

test('a JSON log line reads as one short line', () => {
  const line = prettyLine(
    JSON.stringify({
      level: 40,
      time: Date.UTC(2025, 0, 15, 12, 0, 1),
      pid: 1,
      hostname: 'h',
      role: 'all',
      msg: 'ledger unavailable at start; retrying',
      attempt: 2,
      err: 'connection refused',
    }),
  );
  assert.match(line, /^\d\d:\d\d:\d\d WARN {2}ledger unavailable at start; retrying attempt=2 err="connection refused"\n$/);
  assert.equal(prettyLine('not json'), 'not json');
});
