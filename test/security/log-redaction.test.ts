/**
 * Secrets and personal ids never reach a log line: a key or a user id sent in a query string is
 * redacted from the request log, as the API keys in headers always were. Checked on the log stream
 * of a real instance, listening on a socket, at LOG_LEVEL=debug (request lines are debug).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import pino from 'pino';
import { dropSchema, testEnv, TEST_ADMIN_KEY } from '../support/carteiro.ts';
import { loadConfig } from '../../src/config/config.ts';
import { compose } from '../../src/runtime/compose.ts';
import { buildApp } from '../../src/api/app.ts';
import { redactedUrl } from '../../src/protection/log-redaction.ts';
import { errorHandler } from '../../src/api/error-handler.ts';

test('a key or a user id in a query string never reaches the request log', async () => {
  const lines: string[] = [];
  const env = testEnv({ env: { LOG_LEVEL: 'debug' } });
  const composed = await compose(loadConfig(env), 'api', { log: pino({ level: 'debug' }, { write: (line: string) => void lines.push(line) }) });
  const app = await buildApp(composed.services);
  try {
    await app.listen({ host: '127.0.0.1', port: 0 });
    const addr = app.server.address();
    const base = `http://127.0.0.1:${typeof addr === 'object' && addr ? addr.port : 0}/api/webhooks`;
    const call = async (path: string, key: string | null = TEST_ADMIN_KEY) => {
      const res = await fetch(`${base}/${path}`, key ? { headers: { authorization: `Bearer ${key}` } } : {});
      return { status: res.status, text: await res.text() };
    };

    const org = await fetch(`${base}/organizations`, {
      method: 'POST',
      headers: { authorization: `Bearer ${TEST_ADMIN_KEY}`, 'content-type': 'application/json' },
      body: '{"name":"Leaky"}',
    });
    const orgId = ((await org.json()) as { id: string }).id;
    const made = await fetch(`${base}/organizations/${orgId}/keys`, {
      method: 'POST',
      headers: { authorization: `Bearer ${TEST_ADMIN_KEY}`, 'content-type': 'application/json' },
      body: '{}',
    });
    const orgKey = ((await made.json()) as { key: string }).key;
    const userId = 'person-4711@example.com';

    const refused = await call(`events?api_key=${orgKey}`);
    assert.equal(refused.status, 400);
    assert.ok(!refused.text.includes(orgKey), 'the answer does not repeat the key');
    assert.equal((await call(`events?api_key=${encodeURIComponent(TEST_ADMIN_KEY)}`, null)).status, 401);
    assert.equal((await call(`events?user_id=${encodeURIComponent(userId)}&limit=5`)).status, 200);
    assert.equal((await call(`audit-log?target_id=${encodeURIComponent(userId)}`)).status, 200);
    assert.equal((await call(`nowhere?token=${orgKey}`)).status, 404);

    const logged = lines.join('');
    const incoming = lines.map((l) => JSON.parse(l) as { msg: string; req?: { url: string } }).filter((l) => l.msg === 'incoming request');
    assert.ok(
      incoming.some((l) => l.req?.url === '/api/webhooks/events?user_id=[redacted]&limit=5'),
      JSON.stringify(incoming.map((l) => l.req?.url)),
    );
    for (const secret of [orgKey, TEST_ADMIN_KEY, encodeURIComponent(TEST_ADMIN_KEY), userId, encodeURIComponent(userId), 'person-4711']) {
      assert.ok(!logged.includes(secret), `the log shows ${secret}:\n${logged}`);
    }
  } finally {
    await app.close();
    await composed.dispose();
    await dropSchema(env);
    if (env.CARTEIRO_DATA_DIR) rmSync(env.CARTEIRO_DATA_DIR, { recursive: true, force: true });
  }
});

test('query values are shown only for parameters that name no one and hold no secret', () => {
  assert.equal(redactedUrl('/api/webhooks/events'), '/api/webhooks/events');
  assert.equal(redactedUrl('/api/webhooks/events?status=failed&limit=10&cursor=0190'), '/api/webhooks/events?status=failed&limit=10&cursor=0190');
  assert.equal(redactedUrl('/api/webhooks/events?user_id=ana&api_key=ck_1'), '/api/webhooks/events?user_id=[redacted]&api_key=[redacted]');
  // A parameter no route knows may itself be the secret (?ck_live_…): its name goes too.
  assert.equal(redactedUrl('/x?ck_live_abc123=1&limit=2'), '/x?[redacted]&limit=2');
  assert.equal(redactedUrl('/x?user%5Fid=ana'), '/x?user%5Fid=[redacted]');
});

test("a client value Postgres refused is logged by its error code, never by Postgres's message quoting the value", () => {
  const lines: string[] = [];
  const log = pino({ level: 'debug' }, { write: (line: string) => void lines.push(line) });
  const err = Object.assign(new Error('invalid input syntax for type json'), {
    name: 'PostgresError',
    code: '22P02',
    detail: 'Token "ana@example.com" is invalid.',
    where: 'JSON data, line 1: ana@example.com',
    routine: 'json_errsave_error',
  });
  const sent: { status?: number; body?: unknown } = {};
  const reply = {
    code(s: number) {
      sent.status = s;
      return this;
    },
    headers() {
      return this;
    },
    send(b: unknown) {
      sent.body = b;
      return this;
    },
  };
  errorHandler(err, { log } as never, reply as never);
  assert.equal(sent.status, 400);
  assert.ok(lines.length === 1 && lines[0]!.includes('22P02'), lines.join(''));
  assert.ok(!lines.join('').includes('ana@example.com'), lines.join(''));
});

test('an unexpected Postgres error is logged with its message and code, not with the detail that quotes row values', () => {
  const lines: string[] = [];
  const log = pino({ level: 'debug' }, { write: (line: string) => void lines.push(line) });
  const err = Object.assign(new Error('duplicate key value violates unique constraint "x"'), {
    name: 'PostgresError',
    code: '23505',
    detail: 'Key (user_id)=(ana@example.com) already exists.',
    constraint_name: 'x',
  });
  const reply = {
    code() {
      return this;
    },
    headers() {
      return this;
    },
    send() {
      return this;
    },
  };
  errorHandler(err, { log } as never, reply as never);
  const logged = lines.join('');
  assert.ok(logged.includes('23505') && logged.includes('duplicate key value'), logged);
  assert.ok(!logged.includes('ana@example.com'), logged);
});
