/**
 * A local HTTP server that behaves like the parts of n8n Carteiro uses, for fast edge cases (the real
 * n8n runs in test/n8n/):
 *   GET  /api/v1/workflows?limit&cursor  (X-N8N-API-KEY; opaque cursor, `nextCursor` until the last page)
 *   GET  /healthz
 *   POST /webhook/<path>                 200 for an active workflow's POST Webhook, else 404 "not registered"
 *   POST /webhook-test/<path>            200 once after listen(path) (the editor's "listen for test event"), else 404
 * Every webhook request is kept with its exact body bytes and headers.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { randomBytes, randomUUID } from 'node:crypto';

export type FakeNode = { name: string; type: string; typeVersion: number; webhookId?: string; disabled?: boolean; parameters: Record<string, unknown> };
export type FakeWorkflow = {
  id: string;
  name: string;
  active: boolean;
  isArchived?: boolean;
  nodes: FakeNode[];
  tags: string[];
  /** When set, what n8n runs (the published version); `nodes` is then the unpublished draft. */
  activeVersion?: { nodes: FakeNode[] } | null;
};
export type FakeHit = { path: string; test: boolean; headers: Record<string, string>; body: string; at: number };

export type FakeN8n = {
  url: string;
  apiKey: string;
  workflows: Map<string, FakeWorkflow>;
  hits: FakeHit[];
  /** Every GET /api/v1/workflows, as asked. */
  listCalls: { limit: number; cursor: string | null }[];
  /** How long each GET /api/v1/workflows waits before it answers (a slow n8n). */
  listDelayMs: number;
  addWebhookWorkflow(o: { id?: string; name: string; path: string; active?: boolean; tags?: string[]; method?: string; pathEmpty?: boolean }): FakeWorkflow;
  addWorkflow(w: Omit<FakeWorkflow, 'id'> & { id?: string }): FakeWorkflow;
  /** The editor waits for one test event on /webhook-test/<path>. */
  listen(path: string): void;
  /** Paths whose production webhook answers 410 Gone (a receiver asking never to be called again). */
  gone: Set<string>;
  hitsOn(path: string): FakeHit[];
  waitForHits(path: string, count: number, timeoutMs?: number): Promise<FakeHit[]>;
  close(): Promise<void>;
};

export const webhookNode = (path: string, o: { method?: string; webhookId?: string } = {}): FakeNode => ({
  name: 'Webhook',
  type: 'n8n-nodes-base.webhook',
  typeVersion: 2.1,
  webhookId: o.webhookId ?? randomUUID(),
  parameters: { httpMethod: o.method ?? 'POST', path, responseMode: 'onReceived', options: {} },
});

/** The path n8n serves a workflow's Webhook on (what it registers when the workflow is active). */
function servedPath(w: FakeWorkflow): string | null {
  const nodes = w.activeVersion?.nodes ?? w.nodes;
  const node = nodes.find((n) => n.type === 'n8n-nodes-base.webhook' && !n.disabled && n.parameters.httpMethod === 'POST');
  if (!node) return null;
  return (node.parameters.path as string) || node.webhookId || null;
}

export async function startFakeN8n(opts: { apiKey?: string } = {}): Promise<FakeN8n> {
  const apiKey = opts.apiKey ?? `n8n_api_${randomBytes(8).toString('hex')}`;
  const workflows = new Map<string, FakeWorkflow>();
  const hits: FakeHit[] = [];
  const listCalls: FakeN8n['listCalls'] = [];
  const listening = new Set<string>();
  const gone = new Set<string>();
  const sockets = new Set<Socket>();
  let listDelayMs = 0;

  const json = (res: ServerResponse, status: number, body: unknown) => {
    res.writeHead(status, { 'content-type': 'application/json' });
    res.end(JSON.stringify(body));
  };

  function listWorkflows(req: IncomingMessage, url: URL, res: ServerResponse): void {
    if (req.headers['x-n8n-api-key'] !== apiKey) return json(res, 401, { message: "'X-N8N-API-KEY' header required" });
    const limit = Math.min(250, Number(url.searchParams.get('limit') ?? 100));
    const cursor = url.searchParams.get('cursor');
    listCalls.push({ limit, cursor });
    const offset = cursor ? (JSON.parse(Buffer.from(cursor, 'base64').toString('utf8')) as { offset: number }).offset : 0;
    const all = [...workflows.values()];
    const page = all.slice(offset, offset + limit).map((w) => ({
      id: w.id,
      name: w.name,
      active: w.active,
      isArchived: w.isArchived ?? false,
      nodes: w.nodes,
      connections: {},
      settings: { executionOrder: 'v1' },
      tags: w.tags.map((name, i) => ({ id: `tag${i}`, name })),
      ...(w.activeVersion !== undefined ? { activeVersion: w.activeVersion } : {}),
    }));
    const next = offset + limit < all.length ? Buffer.from(JSON.stringify({ offset: offset + limit })).toString('base64') : null;
    json(res, 200, { data: page, nextCursor: next });
  }

  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const url = new URL(req.url ?? '/', 'http://fake');
      if (req.method === 'GET' && url.pathname === '/api/v1/workflows') {
        if (listDelayMs > 0) return void setTimeout(() => listWorkflows(req, url, res), listDelayMs);
        return listWorkflows(req, url, res);
      }
      if (req.method === 'GET' && url.pathname === '/healthz') return json(res, 200, { status: 'ok' });
      const m = /^\/(webhook|webhook-test)\/(.+)$/.exec(url.pathname);
      if (req.method === 'POST' && m) {
        const test = m[1] === 'webhook-test';
        const path = decodeURIComponent(m[2] as string);
        if (!test && gone.has(path)) return json(res, 410, { message: 'gone' });
        const registered = test ? listening.has(path) : [...workflows.values()].some((w) => w.active && servedPath(w) === path);
        if (!registered) {
          return json(
            res,
            404,
            test
              ? {
                  code: 404,
                  message: `The requested webhook "${path}" is not registered.`,
                  hint: "Click the 'Execute workflow' button on the canvas, then try again. (In test mode, the webhook only works for one call after you click this button)",
                }
              : {
                  code: 404,
                  message: `The requested webhook "POST ${path}" is not registered.`,
                  hint: 'The workflow must be active for a production URL to run successfully.',
                },
          );
        }
        if (test) listening.delete(path);
        hits.push({ path, test, headers: req.headers as Record<string, string>, body: Buffer.concat(chunks).toString('utf8'), at: Date.now() });
        return json(res, 200, { message: 'Workflow was started' });
      }
      json(res, 404, { message: 'not found' });
    });
  });
  server.on('connection', (s: Socket) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as AddressInfo;

  const addWorkflow: FakeN8n['addWorkflow'] = (w) => {
    const wf = { ...w, id: w.id ?? randomBytes(8).toString('base64url').slice(0, 16) } as FakeWorkflow;
    workflows.set(wf.id, wf);
    return wf;
  };

  return {
    url: `http://127.0.0.1:${port}`,
    apiKey,
    get listDelayMs() {
      return listDelayMs;
    },
    set listDelayMs(ms: number) {
      listDelayMs = ms;
    },
    workflows,
    hits,
    listCalls,
    addWorkflow,
    addWebhookWorkflow(o) {
      const node = webhookNode(o.pathEmpty ? '' : o.path, { method: o.method ?? 'POST', ...(o.pathEmpty ? { webhookId: o.path } : {}) });
      return addWorkflow({ id: o.id, name: o.name, active: o.active ?? true, nodes: [node], tags: o.tags ?? [] } as FakeWorkflow);
    },
    listen: (path) => void listening.add(path),
    gone,
    hitsOn: (path) => hits.filter((h) => h.path === path),
    async waitForHits(path, count, timeoutMs = 10_000) {
      const until = Date.now() + timeoutMs;
      for (;;) {
        const got = hits.filter((h) => h.path === path);
        if (got.length >= count) return got;
        if (Date.now() > until) throw new Error(`fake n8n: ${got.length} of ${count} requests on ${path} in ${timeoutMs} ms`);
        await new Promise((r) => setTimeout(r, 20));
      }
    },
    async close() {
      for (const s of sockets) s.destroy();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}
