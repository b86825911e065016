/**
 * The operator CLI (issue 22 §2), as an operator runs it: the real `carteiro` process against a real,
 * listening Carteiro, delivering to real loopback receivers. Checked: what each command prints, what
 * the server then holds or delivers, and the exit codes (0 done, 1 API/network error or a signature
 * that does not verify, 2 usage).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { eventually, startCarteiro, TEST_ADMIN_KEY, type TestCarteiro } from '../support/carteiro.ts';
import { startReceiver, verifiesWithStandardWebhooks, type Received } from '../support/receiver.ts';
import { freePort, runCarteiro } from '../support/processes.ts';

/** The `carteiro` command as installed (bin/carteiro.js: the compile cache, then src/cli/main.ts). */
const MAIN = fileURLToPath(new URL('../../bin/carteiro.js', import.meta.url));

/** A long-running `carteiro …` (tail, listen): its output so far, and a way to stop it by its PID. */
function spawnCli(args: string[], env: Record<string, string>) {
  const child: ChildProcess = spawn(process.execPath, [MAIN, ...args], {
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout?.on('data', (d) => (stdout += d));
  child.stderr?.on('data', (d) => (stderr += d));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  return {
    stdout: () => stdout,
    stderr: () => stderr,
    exited,
    async stop(): Promise<number | null> {
      if (child.exitCode === null && child.signalCode === null) process.kill(child.pid as number, 'SIGTERM');
      return exited;
    },
  };
}

/** A received request as the text `carteiro verify` reads: request line, headers, blank line, body. */
function asHttpText(r: Received, drop: (name: string) => boolean = () => false): string {
  const headers = Object.entries(r.headers)
    .filter(([k]) => !drop(k))
    .map(([k, v]) => `${k}: ${v}`);
  return `POST ${r.path} HTTP/1.1\r\n${headers.join('\r\n')}\r\n\r\n${r.body}`;
}

const NEW_COMMANDS = [
  ['send'],
  ['tail'],
  ['events'],
  ['endpoints'],
  ['endpoints', 'create'],
  ['endpoints', 'update'],
  ['endpoints', 'rotate'],
  ['endpoints', 'test'],
  ['endpoints', 'enable'],
  ['endpoints', 'disable'],
  ['replay'],
  ['recover'],
  ['verify'],
  ['listen'],
  ['templates'],
];

test('--help on every operator command prints its help and does nothing else', async (t) => {
  const base = mkdtempSync(join(tmpdir(), 'carteiro-cli-help-'));
  t.after(() => rmSync(base, { recursive: true, force: true }));
  const dataDir = join(base, 'data');
  // Nothing listens there: a command that tried the API would fail, not print help.
  const env = { CARTEIRO_DATA_DIR: dataDir, CARTEIRO_URL: `http://127.0.0.1:${await freePort()}/api/webhooks`, LOG_LEVEL: 'warn' };
  const failures: string[] = [];
  const queue = NEW_COMMANDS.flatMap((c) => [
    [...c, '--help'],
    [...c, '-h'],
  ]);
  await Promise.all(
    [0, 1].map(async () => {
      for (let args = queue.shift(); args; args = queue.shift()) {
        const r = await runCarteiro(args, env, { timeoutMs: 30_000 });
        const name = `carteiro ${args.join(' ')}`;
        const sub = args.length > 2 ? args[1] : undefined;
        if (r.timedOut) failures.push(`${name}: still running after 30 s`);
        else if (r.code !== 0) failures.push(`${name}: exit code ${r.code} (${r.stderr.slice(0, 300)})`);
        else if (!/^Usage: carteiro /m.test(r.stdout)) failures.push(`${name}: no usage printed (${r.stdout.slice(0, 200)})`);
        else if (sub && !r.stdout.includes(`carteiro ${args[0]} ${sub}`)) failures.push(`${name}: not the ${sub} action's help (${r.stdout.slice(0, 200)})`);
        else if (r.stderr.trim()) failures.push(`${name}: wrote to stderr (${r.stderr.slice(0, 200)})`);
        if (existsSync(dataDir)) failures.push(`${name}: created the data folder`);
      }
    }),
  );
  assert.deepEqual(failures, []);
});

test('usage mistakes exit 2, API refusals and an unreachable server exit 1', async (t) => {
  const c = await startCarteiro({ listen: true });
  t.after(() => c.stop());
  const env = { CARTEIRO_URL: `${c.url}/api/webhooks`, CARTEIRO_API_KEY: TEST_ADMIN_KEY, CARTEIRO_DATA_DIR: join(tmpdir(), 'carteiro-cli-none') };

  const cases: [string[], number, RegExp][] = [
    [['send', 'user.registered'], 2, /--data/],
    [['send', 'user.registered', '--data', 'not json'], 2, /not JSON/],
    [['events', '--bogus'], 2, /unknown option/],
    [['endpoints', 'frobnicate', 'x', 'y'], 2, /too many arguments|unknown/],
    [['recover', '--endpoint', '00000000-0000-4000-8000-000000000000', '--since', 'yesterday-ish'], 2, /--since/],
    [['verify'], 2, /--secret/],
    [['events', '00000000-0000-4000-8000-000000000000'], 1, /404/],
    [['send', 'no.such.type', '--data', '{}'], 1, /^error: 4\d\d /m],
    [['events', '--api-key', 'ck_wrong_key_0123456789abcdef'], 1, /401/],
    [['events', '--url', `http://127.0.0.1:${await freePort()}/api/webhooks`], 1, /cannot reach Carteiro/],
  ];
  for (const [args, code, message] of cases) {
    const r = await runCarteiro(args, env);
    assert.equal(r.code, code, `carteiro ${args.join(' ')}: ${r.stdout} ${r.stderr}`);
    assert.match(r.stderr, message, `carteiro ${args.join(' ')}`);
    assert.equal(r.stdout, '', `carteiro ${args.join(' ')} printed nothing on stdout`);
  }

  // With no URL and no key, the local server (HOST/PORT) and the data folder's generated admin key.
  const dataDir = mkdtempSync(join(tmpdir(), 'carteiro-cli-local-'));
  t.after(() => rmSync(dataDir, { recursive: true, force: true }));
  writeFileSync(join(dataDir, 'admin-key'), `${TEST_ADMIN_KEY}\n`);
  const local = await runCarteiro(['events', '--limit', '1'], { HOST: '127.0.0.1', PORT: new URL(c.url as string).port, CARTEIRO_DATA_DIR: dataDir });
  assert.equal(local.code, 0, local.stderr);
  assert.match(local.stdout, /no events|ID/);
});

test('send, events, endpoints, tail, test, rotate, replay, disable/recover/enable: the daily work, without curl', async (t) => {
  const c: TestCarteiro = await startCarteiro({ listen: true });
  const receiver = await startReceiver();
  const other = await startReceiver();
  t.after(async () => {
    await receiver.close();
    await other.close();
    await c.stop();
  });
  const env = { CARTEIRO_URL: `${c.url}/api/webhooks`, CARTEIRO_API_KEY: TEST_ADMIN_KEY, CARTEIRO_DATA_DIR: join(tmpdir(), 'carteiro-cli-none') };
  const cli = async (...args: string[]) => {
    const r = await runCarteiro(args, env);
    assert.equal(r.code, 0, `carteiro ${args.join(' ')} exited ${r.code}: ${r.stderr}`);
    return r.stdout;
  };

  // endpoints create: the secret is printed once.
  const created = JSON.parse(
    await cli(
      'endpoints',
      'create',
      `${receiver.url}/hook`,
      '--name',
      'main',
      '--events',
      'user.*,payment.confirmed',
      '--header',
      'Authorization: Bearer cli-token',
      '--header',
      'X-Source:cli',
      '--max-retries',
      '0',
      '--json',
    ),
  );
  assert.match(created.secret, /^whsec_/);
  assert.deepEqual([created.headers, created.max_retries], [{ authorization: 'Bearer cli-token', 'x-source': 'cli' }, 0]);
  const id: string = created.id;
  const text = await cli('endpoints', 'create', other.url, '--name', 'everything');
  assert.match(text, /secret: whsec_\S+ {3}\(shown once/);
  const otherId = /^([0-9a-f-]{36}) {2}everything/m.exec(text)?.[1] as string;
  assert.ok(otherId, text);

  const listed = await cli('endpoints');
  assert.match(listed, new RegExp(`${id}\\s+main\\s+enabled`));
  const shownEndpoint = await cli('endpoints', id);
  assert.match(shownEndpoint, /events: user\.\*, payment\.confirmed/);
  assert.match(shownEndpoint, /headers: authorization, x-source\n {2}delivery: 0 retries/);
  assert.equal(shownEndpoint.includes('cli-token'), false, 'header values are not printed');

  // tail follows deliveries to one endpoint: started first, it sees the next one.
  const tail = spawnCli(['tail', '--endpoint', id, '--count', '1'], env);
  t.after(() => tail.stop());
  await eventually(() => tail.stderr().includes('following deliveries'), { what: 'tail connected' });

  // send: committed, delivered, signed with the endpoint's secret.
  const sent = await cli('send', 'user.registered', '--data', '{"user_id":"u-1","email":"a@example.com","name":"A"}');
  const eventId = /^accepted event ([0-9a-f-]{36}) \(user\.registered/.exec(sent)?.[1] as string;
  assert.ok(eventId, sent);
  const [first] = await receiver.waitFor(1);
  assert.equal(JSON.parse((first as Received).body).id, eventId);
  assert.ok(verifiesWithStandardWebhooks(created.secret, first as Received));
  assert.equal((first as Received).headers.authorization, 'Bearer cli-token');

  assert.equal(await tail.exited, 0, tail.stderr());
  assert.match(tail.stdout(), new RegExp(`ok +200 +user\\.registered +event ${eventId} → endpoint ${id} +attempt 1`));

  // events: the list, and one event with its attempts.
  assert.match(await cli('events', '--type', 'user.registered'), new RegExp(`${eventId}\\s+user\\.registered`));
  await eventually(async () => (await c.request('GET', `events/${eventId}/status`)).body.status === 'completed', { what: 'event completed' });
  const shown = await cli('events', eventId);
  assert.match(shown, /"user_id": "u-1"/);
  assert.match(shown, /attempts:\n.*#1\s+200/);
  assert.match(shown, new RegExp(`deliveries:\\n(.*\\n)*${id}\\s+main\\s+succeeded\\s+attempts 1\\s+last 200`));

  // endpoints test: a webhook.test event to this endpoint only, whatever its filters.
  const beforeOther = other.received.length;
  assert.match(await cli('endpoints', 'test', id, '--message', 'hello'), /^test event [0-9a-f-]{36} queued for endpoint/);
  const [, testDelivery] = await receiver.waitFor(2);
  const testBody = JSON.parse((testDelivery as Received).body);
  assert.equal(testBody.type, 'webhook.test');
  assert.deepEqual(testBody.data, { test: true, endpoint_id: id, message: 'hello' });
  await cli('endpoints', 'test', otherId);
  await other.waitFor(beforeOther + 1);
  assert.equal(other.received.filter((r) => JSON.parse(r.body).data?.endpoint_id === id).length, 0, 'the other endpoint got no test meant for the first');

  // rotate: the new secret, with no overlap, signs what follows.
  const rotated = JSON.parse(await cli('endpoints', 'rotate', id, '--overlap', '0', '--json'));
  assert.notEqual(rotated.secret, created.secret);

  // replay: the same event again, same webhook-id, signed with the new secret.
  assert.match(await cli('replay', eventId, '--endpoint', id), new RegExp(`event ${eventId}: 1 deliveries requeued`));
  const [, , replayed] = await receiver.waitFor(3);
  assert.equal((replayed as Received).headers['webhook-id'], (first as Received).headers['webhook-id']);
  assert.ok(verifiesWithStandardWebhooks(rotated.secret, replayed as Received));

  // disable: events meanwhile are not for it; recover --dry-run counts them and queues nothing.
  assert.match(await cli('endpoints', 'disable', id), /disabled$/m);
  assert.match(await cli('endpoints', id), /disabled/);
  const since = new Date(Date.now() - 60_000).toISOString();
  for (const n of [1, 2])
    await cli('send', 'payment.confirmed', '--data', JSON.stringify({ payment_id: `p_${n}`, amount: 10, currency: 'BRL' }), '--idempotency-key', `pay-${n}`);
  const beforeRecover = receiver.received.length;
  assert.match(await cli('recover', '--endpoint', id, '--since', since, '--dry-run'), /^dry run: would recover 2 events .*\(nothing queued\)/);
  assert.equal((await c.request('POST', `endpoints/${id}/recover/preview`, { since })).body.would_recover, 2, 'the dry run queued nothing');
  assert.match(await cli('endpoints', 'enable', id), /enabled$/m);
  const recovered = JSON.parse(await cli('recover', '--endpoint', id, '--since', '10m', '--json'));
  assert.deepEqual(recovered, { recovered: 2 });
  await receiver.waitFor(beforeRecover + 2);
  const types = receiver.received.slice(beforeRecover).map((r) => JSON.parse(r.body).type);
  assert.deepEqual(types, ['payment.confirmed', 'payment.confirmed']);
});

test("templates lists the transformation templates and prints one's code; endpoints create --template gives an endpoint that code", async (t) => {
  const c: TestCarteiro = await startCarteiro({ listen: true });
  const receiver = await startReceiver();
  t.after(async () => {
    await receiver.close();
    await c.stop();
  });
  const env = { CARTEIRO_URL: `${c.url}/api/webhooks`, CARTEIRO_API_KEY: TEST_ADMIN_KEY, CARTEIRO_DATA_DIR: join(tmpdir(), 'carteiro-cli-none') };
  const cli = async (...args: string[]) => {
    const r = await runCarteiro(args, env);
    assert.equal(r.code, 0, `carteiro ${args.join(' ')} exited ${r.code}: ${r.stderr}`);
    return r;
  };
  const templates = (await c.request('GET', 'transformation-templates')).body.data as { name: string; source: string }[];
  const slack = templates.find((x) => x.name === 'slack')?.source as string;
  assert.ok(slack);

  const listed = (await cli('templates')).stdout;
  for (const x of templates) assert.match(listed, new RegExp(`^${x.name} `, 'm'));
  assert.match(listed, /^telegram\s+.*\s+chat_id\s/m);
  assert.equal((await cli('templates', 'slack')).stdout, slack.endsWith('\n') ? slack : `${slack}\n`, 'the code alone on stdout');
  const telegramCode = await cli('templates', 'telegram');
  assert.match(telegramCode.stderr, /option chat_id \(required\)/);
  const unknown = await runCarteiro(['templates', 'nope'], env);
  assert.equal(unknown.code, 2, unknown.stderr);

  // --template: the endpoint's transformation is the template's code, labelled with its name.
  const created = JSON.parse(
    (await cli('endpoints', 'create', `${receiver.url}/slack`, '--name', 'alerts', '--events', 'user.*', '--template', 'slack', '--json')).stdout,
  );
  const stored = (await c.request('GET', `endpoints/${created.id}`)).body;
  assert.equal(stored.transformation, slack);
  assert.equal(stored.template, 'slack');
  assert.match((await cli('endpoints', created.id)).stdout, /transformation: from the slack template, \d+ characters/);

  // What is delivered is the template's Slack message, not Carteiro's envelope.
  await cli('send', 'user.registered', '--data', '{"user_id":"u-9","email":"b@example.com","name":"B"}');
  const [got] = await receiver.waitFor(1);
  const body = JSON.parse((got as { body: string }).body);
  assert.equal(typeof body.text, 'string');
  assert.ok(Array.isArray(body.blocks), (got as { body: string }).body);

  // --template-option fills in the template's options; the server refuses a missing one (exit 1).
  const tg = JSON.parse(
    (
      await cli(
        'endpoints',
        'create',
        `${receiver.url}/bot123:abc`,
        '--name',
        'tg',
        '--template',
        'telegram',
        '--template-option',
        'chat_id=-1001234567890',
        '--json',
      )
    ).stdout,
  );
  assert.match((await c.request('GET', `endpoints/${tg.id}`)).body.transformation, /const CHAT_ID = "-1001234567890";/);
  const missing = await runCarteiro(['endpoints', 'create', `${receiver.url}/bot123:abc`, '--name', 'tg2', '--template', 'telegram'], env);
  assert.equal(missing.code, 1, missing.stderr);
  assert.match(missing.stderr, /template_options\.chat_id/);
  const stray = await runCarteiro(['endpoints', 'create', receiver.url, '--name', 'x', '--template-option', 'chat_id=1'], env);
  assert.equal(stray.code, 2, stray.stderr);

  // --transformation @file: edited code, with the template as its label.
  const dir = mkdtempSync(join(tmpdir(), 'carteiro-cli-code-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const edited = slack.replace('function handler(webhook) {', 'function handler(webhook) {\n  webhook.headers["x-edited"] = "yes";');
  assert.notEqual(edited, slack);
  writeFileSync(join(dir, 'slack.js'), edited);
  const own = JSON.parse(
    (await cli('endpoints', 'create', receiver.url, '--name', 'own', '--template', 'slack', '--transformation', `@${join(dir, 'slack.js')}`, '--json')).stdout,
  );
  const ownStored = (await c.request('GET', `endpoints/${own.id}`)).body;
  assert.deepEqual([ownStored.transformation, ownStored.template], [edited, 'slack']);

  // endpoints update: only what is given changes; --clear goes back to the service's setting.
  const before = (await c.request('GET', `endpoints/${own.id}`)).body;
  const updated = JSON.parse(
    (await cli('endpoints', 'update', own.id, '--name', 'renamed', '--events', 'payment.*', '--timeout-ms', '2000', '--header', 'X-Team: ops', '--json'))
      .stdout,
  );
  assert.deepEqual([updated.name, updated.events, updated.timeout_ms, updated.headers], ['renamed', ['payment.*'], 2000, { 'x-team': 'ops' }]);
  assert.deepEqual([updated.url, updated.transformation], [before.url, before.transformation], 'what was not given is unchanged');
  const cleared = JSON.parse((await cli('endpoints', 'update', own.id, '--clear', 'timeout_ms,transformation,template', '--json')).stdout);
  assert.deepEqual([cleared.timeout_ms, cleared.transformation, cleared.template, cleared.name], [null, null, null, 'renamed']);
  for (const [args, code, pattern] of [
    [['endpoints', 'update', own.id], 2, /at least one field/],
    [['endpoints', 'update', own.id, '--clear', 'url'], 2, /"url" cannot be cleared/],
    [['endpoints', 'update', own.id, '--timeout-ms', '2000', '--clear', 'timeout_ms'], 2, /also given a value/],
    [['endpoints', 'update', own.id, '--receiver-url', 'not a url'], 1, /url/],
  ] as const) {
    const r = await runCarteiro([...args], env);
    assert.equal(r.code, code, `${args.join(' ')}: ${r.stderr}`);
    assert.match(r.stderr, pattern);
  }
  assert.equal((await c.request('GET', `endpoints/${own.id}`)).body.name, 'renamed', 'refused updates changed nothing');
});

test('verify checks both schemes locally: good signatures exit 0, bad ones 1', async (t) => {
  const c = await startCarteiro({ listen: true });
  const receiver = await startReceiver();
  t.after(async () => {
    await receiver.close();
    await c.stop();
  });
  const ep = (await c.request('POST', 'endpoints', { name: 'v', url: receiver.url, events: ['*'] })).body;
  await c.request('POST', 'trigger', { event_type: 'user.registered', data: { user_id: 'u-9', email: 'v@example.com', name: 'V' } });
  const [r] = (await receiver.waitFor(1)) as [Received];
  const env = { CARTEIRO_DATA_DIR: join(tmpdir(), 'carteiro-cli-none') };
  const verify = (input: string, ...args: string[]) => runCarteiro(['verify', '--secret', ep.secret, ...args], env, { input });

  const both = await verify(asHttpText(r));
  assert.equal(both.code, 0, both.stdout + both.stderr);
  assert.match(both.stdout, /^signature OK\n.*seed\):\s+valid\n.*Standard Webhooks\):\s+valid/);

  const isSeed = (k: string) => k.startsWith('x-webhook-');
  const isStandard = (k: string) => k.startsWith('webhook-');
  const standardOnly = await verify(asHttpText(r, isSeed));
  assert.equal(standardOnly.code, 0, standardOnly.stdout);
  assert.match(standardOnly.stdout, /seed\):\s+not signed/);
  const seedOnly = await verify(asHttpText(r, isStandard));
  assert.equal(seedOnly.code, 0, seedOnly.stdout);
  assert.match(seedOnly.stdout, /Standard Webhooks\):\s+not signed/);

  // A bare body with its headers as flags.
  const bare = await verify(
    r.body,
    '--header',
    `webhook-id: ${r.headers['webhook-id']}`,
    '-H',
    `webhook-timestamp: ${r.headers['webhook-timestamp']}`,
    '-H',
    `webhook-signature: ${r.headers['webhook-signature']}`,
  );
  assert.equal(bare.code, 0, bare.stdout + bare.stderr);

  const wrongSecret = await runCarteiro(['verify', '--secret', 'whsec_' + Buffer.alloc(24, 1).toString('base64')], env, { input: asHttpText(r) });
  assert.equal(wrongSecret.code, 1);
  assert.match(wrongSecret.stdout, /^signature FAILED\n.*seed\):\s+INVALID\n.*Standard Webhooks\):\s+INVALID/);

  const tampered = await verify(asHttpText({ ...r, body: r.body.replace('u-9', 'u-8') }));
  assert.equal(tampered.code, 1);
  for (const drop of [isSeed, isStandard]) {
    const forged = await verify(asHttpText({ ...r, body: r.body.replace('u-9', 'u-7') }, drop));
    assert.equal(forged.code, 1, 'one scheme alone, over a changed body, fails');
  }
  const unsigned = await verify(asHttpText(r, (k) => isSeed(k) || isStandard(k)));
  assert.equal(unsigned.code, 1, 'a request with no signature does not verify');

  const old = asHttpText({ ...r, headers: { ...r.headers, 'webhook-timestamp': '1000000000' } }, isSeed);
  const staleRun = await verify(old);
  assert.equal(staleRun.code, 1, 'an old (and so wrongly signed) timestamp fails');
  assert.match(staleRun.stdout, /STALE/);
});

test('listen receives, verifies and pretty-prints a webhook', async (t) => {
  const c = await startCarteiro({ listen: true });
  t.after(() => c.stop());
  const port = await freePort();
  const ep = (await c.request('POST', 'endpoints', { name: 'local', url: `http://127.0.0.1:${port}/webhooks`, events: ['user.*'] })).body;
  const listen = spawnCli(['listen', '--port', String(port), '--secret', ep.secret], { CARTEIRO_DATA_DIR: join(tmpdir(), 'carteiro-cli-none') });
  t.after(() => listen.stop());
  await eventually(() => listen.stdout().includes(`listening on http://127.0.0.1:${port}/`), { what: 'listen ready' });

  const sent = await c.request('POST', 'trigger', { event_type: 'user.registered', data: { user_id: 'u-42', email: 'l@example.com', name: 'L' } });
  const eventId = sent.body.event_id as string;
  await eventually(() => listen.stdout().includes('"user_id": "u-42"'), { what: 'the webhook printed' });
  await eventually(async () => (await c.request('GET', `events/${eventId}/status`)).body.status === 'completed', { what: 'delivered (listen answered 200)' });

  const out = listen.stdout();
  assert.match(out, /── \S+ {2}POST \/webhooks {2}user\.registered {2}webhook-id [0-9a-f-]{36} {2}→ 200/);
  assert.match(out, /signature OK\n.*seed\):\s+valid\n.*Standard Webhooks\):\s+valid/);
  assert.match(out, new RegExp(`\\{\\n  "id": "${eventId}",\\n  "type": "user\\.registered"`));
  assert.equal(await listen.stop(), 0, 'Ctrl-C (SIGTERM) ends it with 0');
  assert.match(listen.stderr(), /stopped after 1 request/);

  // A port already taken: an error, exit code 1.
  const blocker = spawnCli(['listen', '--port', '0'], { CARTEIRO_DATA_DIR: join(tmpdir(), 'carteiro-cli-none') });
  t.after(() => blocker.stop());
  await eventually(() => /listening on http:\/\/127\.0\.0\.1:(\d+)\//.exec(blocker.stdout()), { what: 'second listen ready' });
  const taken = (/listening on http:\/\/127\.0\.0\.1:(\d+)\//.exec(blocker.stdout()) as RegExpExecArray)[1] as string;
  const clash = await runCarteiro(['listen', '--port', taken], { CARTEIRO_DATA_DIR: join(tmpdir(), 'carteiro-cli-none') });
  assert.equal(clash.code, 1);
  assert.match(clash.stderr, /EADDRINUSE/);
  assert.equal(await blocker.stop(), 0);
});
