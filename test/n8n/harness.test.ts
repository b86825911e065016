// Smoke test of the real-n8n harness (test/support/n8n.ts).
// Needs n8n installed outside the clone: `bash scripts/n8n/install.sh`.
// Skipped when it is missing, except in CI (CI set), where that is a failure.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { fetch } from 'undici';
import { isN8nInstalled, n8nInstallDir, N8N_INSTALL_HINT, startN8n } from '../support/n8n.ts';

const installed = isN8nInstalled();
const skip = !installed && !process.env['CI'] ? `${N8N_INSTALL_HINT} (looked in ${n8nInstallDir()})` : false;

test('real n8n: webhook workflow receives a POST, raw bytes kept; deactivated URL answers 404', { skip, timeout: 300_000 }, async (t) => {
  assert.ok(installed, `${N8N_INSTALL_HINT} (looked in ${n8nInstallDir()}); CI must not skip this test`);

  const started = Date.now();
  const n8n = await startN8n();
  t.after(() => n8n.stop());
  t.diagnostic(`n8n pid ${n8n.pid} at ${n8n.baseUrl}, up with owner + API key in ${Date.now() - started} ms`);
  assert.match(n8n.baseUrl, /^http:\/\/127\.0\.0\.1:\d+$/);

  const path = `carteiro-smoke-${process.pid}`;
  const wf = await n8n.createWebhookWorkflow({
    name: 'carteiro smoke',
    path,
    rawBody: true,
    tags: ['carteiro:user.registered'],
  });
  assert.equal(wf.productionUrl, `${n8n.baseUrl}/webhook/${path}`);

  // Inactive: the production URL is not served.
  const before = await fetch(wf.productionUrl, {
    method: 'POST',
    body: '{}',
    headers: { 'content-type': 'application/json' },
    signal: AbortSignal.timeout(10_000),
  });
  await before.arrayBuffer();
  assert.equal(before.status, 404, 'inactive workflow must answer 404');

  const t0 = Date.now();
  await n8n.activate(wf.id);
  await n8n.waitForWebhookRegistered(path, 30_000);
  t.diagnostic(`webhook registered ${Date.now() - t0} ms after activate`);

  // The workflow as the public API lists it: active, with its tag and Webhook node.
  const active = await n8n.listWorkflows({ active: true });
  const listed = active.find((w) => w.id === wf.id);
  assert.ok(listed, 'activated workflow is in GET /workflows?active=true');
  assert.deepEqual(
    listed.tags?.map((tag) => tag.name),
    ['carteiro:user.registered'],
  );
  const node = listed.nodes.find((n) => n.type === 'n8n-nodes-base.webhook');
  assert.equal(node?.parameters['path'], path);
  if (process.env['CARTEIRO_N8N_DUMP']) t.diagnostic(`workflow list item: ${JSON.stringify(listed)}`);

  // Deliberately not what JSON.stringify would give (spacing, key order, unicode escape),
  // so an exact raw-bytes match proves the bytes were kept as sent.
  const rawBody = '{ "type":"user.registered",  "data": {"id": 42, "name": "Jo\\u00e3o"}, "n": [1,2.50] }';
  const res = await fetch(wf.productionUrl, {
    method: 'POST',
    headers: {
      'content-type': 'application/json',
      'webhook-id': 'msg_smoke_1',
      'X-Carteiro-Test': 'Smoke-Value',
    },
    body: rawBody,
    signal: AbortSignal.timeout(10_000),
  });
  const resText = await res.text();
  assert.equal(res.status, 200, `POST to the production URL: ${res.status} ${resText}`);

  const [item, ...more] = await n8n.waitForExecutions(wf.id, 1, 30_000);
  assert.ok(item);
  assert.equal(more.length, 0);
  if (process.env['CARTEIRO_N8N_DUMP']) {
    const raw = await n8n.api('GET', `/executions/${item.executionId}?includeData=true`);
    t.diagnostic(`execution: ${JSON.stringify(raw)}`);
  }
  assert.equal(item.status, 'success');
  assert.equal(item.headers['webhook-id'], 'msg_smoke_1');
  assert.equal(item.headers['x-carteiro-test'], 'Smoke-Value');
  assert.equal(item.headers['content-type'], 'application/json');
  assert.deepEqual(item.body, JSON.parse(rawBody));
  assert.ok(item.rawBody, 'raw body kept (options.rawBody)');
  assert.ok(item.rawBody.equals(Buffer.from(rawBody, 'utf8')), `raw bytes differ: ${item.rawBody.toString('utf8')}`);

  // Deactivated: the production URL answers 404 again.
  await n8n.deactivate(wf.id);
  const after = await fetch(wf.productionUrl, {
    method: 'POST',
    body: rawBody,
    headers: { 'content-type': 'application/json' },
    signal: AbortSignal.timeout(10_000),
  });
  await after.arrayBuffer();
  assert.equal(after.status, 404, 'deactivated workflow must answer 404');
  assert.equal((await n8n.listExecutions(wf.id)).length, 1, 'no execution from the POST after deactivation');

  const pid = n8n.pid;
  await n8n.stop();
  assert.throws(() => process.kill(pid, 0), 'n8n process is gone after stop()');
});
