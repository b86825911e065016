// A real n8n 1.x on loopback, for tests.
//
// n8n itself is installed OUTSIDE the clone by `bash scripts/n8n/install.sh`
// (npm run n8n:install) into ${CARTEIRO_N8N_HOME:-~/.cache/carteiro}/n8n-<version>;
// the version is the one pinned in scripts/n8n/package.json.
//
// startN8n() spawns it on 127.0.0.1 with a fresh temporary user folder (SQLite
// database, encryption key, logs), waits until it answers, creates the owner
// and an API key, and hands back helpers over the public API. All traffic goes
// to 127.0.0.1 only, every wait is bounded, and stop() ends only the process it
// started, by its PID.
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import { existsSync, mkdtempSync, openSync, closeSync, readFileSync, rmSync, statSync } from 'node:fs';
import { createServer } from 'node:net';
import { homedir, tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';
import { Agent, fetch } from 'undici';

const projectRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const harnessManifest = join(projectRoot, 'scripts', 'n8n', 'package.json');

/** The exact n8n version pinned in scripts/n8n/package.json. */
export function n8nVersion(): string {
  const manifest = JSON.parse(readFileSync(harnessManifest, 'utf8')) as { dependencies?: Record<string, string> };
  const version = manifest.dependencies?.['n8n'];
  if (!version || !/^1\.\d+\.\d+$/.test(version)) {
    throw new Error(`${harnessManifest} must pin one exact n8n 1.x version, found ${String(version)}`);
  }
  return version;
}

/** Where scripts/n8n/install.sh puts n8n: ${CARTEIRO_N8N_HOME:-~/.cache/carteiro}/n8n-<version>. */
export function n8nInstallDir(): string {
  const home = process.env['CARTEIRO_N8N_HOME'] || join(homedir(), '.cache', 'carteiro');
  return join(home, `n8n-${n8nVersion()}`);
}

/** True when install.sh completed in n8nInstallDir() (its marker and n8n's entry point exist). */
export function isN8nInstalled(): boolean {
  const dir = n8nInstallDir();
  return existsSync(join(dir, '.carteiro-n8n-installed')) && existsSync(join(dir, 'node_modules', 'n8n', 'bin', 'n8n'));
}

export const N8N_INSTALL_HINT = 'n8n is not installed: run `bash scripts/n8n/install.sh` (npm run n8n:install; ~5 min, ~1.7 GB, outside the clone)';

export interface StartN8nOptions {
  /** Port on 127.0.0.1; a free one is picked when omitted. */
  port?: number;
  /** Bound on start-up until the REST API answers (default 120 s). */
  startTimeoutMs?: number;
  /** Extra environment for the n8n process (applied last). */
  env?: Record<string, string>;
}

export interface CreateWebhookWorkflowOptions {
  name: string;
  /** Webhook path, without a leading slash; production URL is <baseUrl>/webhook/<path>. */
  path: string;
  /** Tag names to set on the workflow (created when missing), e.g. 'carteiro:user.registered'. */
  tags?: string[];
  /** Webhook node option rawBody: the exact request bytes are kept (see ReceivedItem.rawBody). */
  rawBody?: boolean;
  /** Activate, then wait until the production webhook answers (default false). */
  active?: boolean;
}

export interface CreatedWorkflow {
  id: string;
  productionUrl: string;
}

/** One request as the Webhook node received it (one execution). */
export interface ReceivedItem {
  executionId: string;
  status: string;
  /** Request headers, names lower-cased, as n8n saw them. */
  headers: Record<string, string>;
  /** Parsed body (JSON bodies are objects). */
  body: unknown;
  query: Record<string, unknown>;
  /** The exact bytes of the request body, when the workflow has rawBody on. */
  rawBody?: Buffer;
}

/** n8n limits tag names to 24 characters ('carteiro:user.registered' is exactly 24). */
export const N8N_TAG_MAX_LENGTH = 24;

export interface N8nTag {
  id: string;
  name: string;
}

/** A workflow as GET /api/v1/workflows returns it (the fields tests use; more are present). */
export interface N8nWorkflow {
  id: string;
  name: string;
  active: boolean;
  nodes: Array<{ name: string; type: string; typeVersion: number; parameters: Record<string, unknown>; webhookId?: string; [k: string]: unknown }>;
  connections: Record<string, unknown>;
  settings?: Record<string, unknown>;
  tags?: N8nTag[];
  createdAt?: string;
  updatedAt?: string;
  [k: string]: unknown;
}

export interface RunningN8n {
  /** http://127.0.0.1:<port> */
  baseUrl: string;
  /** Public API key, sent as header X-N8N-API-KEY. */
  apiKey: string;
  pid: number;
  /** The owner set up at start (for /rest/login if a test needs a session). */
  owner: { email: string; password: string };
  /** The temporary N8N_USER_FOLDER (removed by stop()). */
  userFolder: string;

  createWebhookWorkflow(opts: CreateWebhookWorkflowOptions): Promise<CreatedWorkflow>;
  activate(id: string): Promise<void>;
  deactivate(id: string): Promise<void>;
  deleteWorkflow(id: string): Promise<void>;
  getWorkflow(id: string): Promise<N8nWorkflow>;
  /** Pages through GET /api/v1/workflows (nextCursor), e.g. { active: true } or { tags: 'a,b' }. */
  listWorkflows(query?: { active?: boolean; tags?: string; name?: string }): Promise<N8nWorkflow[]>;
  /** Replaces the workflow's tags with these names (creating missing tags). */
  setTags(workflowId: string, tagNames: string[]): Promise<N8nTag[]>;
  /** Returns the id of the tag with this name, creating it when missing. */
  ensureTag(name: string): Promise<N8nTag>;
  /** Polls OPTIONS <baseUrl>/webhook/<path> (with an Origin header) until it answers 204. */
  waitForWebhookRegistered(path: string, timeoutMs?: number): Promise<void>;
  /** Every request the workflow's Webhook node received, oldest first. */
  listExecutions(workflowId: string): Promise<ReceivedItem[]>;
  /** Polls listExecutions until at least `count` items are there (executions are saved after the response). */
  waitForExecutions(workflowId: string, count: number, timeoutMs?: number): Promise<ReceivedItem[]>;
  /** Raw public-API call: `api('GET', '/workflows')` hits <baseUrl>/api/v1/workflows. */
  api<T = unknown>(method: string, path: string, body?: unknown): Promise<T>;
  /** Last part of n8n's own log (stdout+stderr), for failure messages. */
  logTail(maxBytes?: number): string;
  /** SIGTERM the n8n process (by PID), SIGKILL after `timeoutMs` (default 15 s), remove the temp folder. */
  stop(timeoutMs?: number): Promise<void>;
}

const REQUEST_TIMEOUT_MS = 30_000;

/** Node >= 22 to run n8n: this process's when it is new enough, else the project's Node 24. */
function nodeBinary(): string {
  const major = Number(process.versions.node.split('.')[0]);
  if (major >= 22) return process.execPath;
  const local = join(projectRoot, 'node_modules', '.bin', 'node');
  if (existsSync(local)) return local;
  throw new Error(`n8n needs Node >= 22; this is ${process.version} and ${local} is missing (npm ci)`);
}

async function freePort(): Promise<number> {
  return await new Promise<number>((resolvePort, reject) => {
    const server = createServer();
    server.unref();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => (port ? resolvePort(port) : reject(new Error('no free port'))));
    });
  });
}

/** The environment n8n runs with. Every value is there for isolation or to keep it off the network. */
export function n8nEnv(opts: { port: number; userFolder: string; runnersBrokerPort: number }): Record<string, string> {
  const base = `http://127.0.0.1:${opts.port}`;
  return {
    // Config folder (encryption key, SQLite DB, logs): fresh per run, never ~/.n8n.
    N8N_USER_FOLDER: opts.userFolder,
    N8N_ENCRYPTION_KEY: randomBytes(24).toString('hex'),
    // Loopback only.
    N8N_LISTEN_ADDRESS: '127.0.0.1',
    N8N_HOST: '127.0.0.1',
    N8N_PORT: String(opts.port),
    N8N_PROTOCOL: 'http',
    WEBHOOK_URL: `${base}/`,
    N8N_EDITOR_BASE_URL: `${base}/`,
    N8N_SECURE_COOKIE: 'false', // plain http
    // Database: SQLite inside the user folder.
    DB_TYPE: 'sqlite',
    DB_SQLITE_POOL_SIZE: '2', // the non-deprecated SQLite driver (WAL + read pool)
    // No outside connection: telemetry, version check, templates, banners, licence renewal,
    // community/verified packages (would reach api.n8n.io / the npm registry).
    N8N_DIAGNOSTICS_ENABLED: 'false',
    N8N_DIAGNOSTICS_CONFIG_FRONTEND: '',
    N8N_DIAGNOSTICS_CONFIG_BACKEND: '',
    N8N_VERSION_NOTIFICATIONS_ENABLED: 'false',
    N8N_TEMPLATES_ENABLED: 'false',
    N8N_PERSONALIZATION_ENABLED: 'false',
    N8N_HIRING_BANNER_ENABLED: 'false',
    N8N_DYNAMIC_BANNERS_ENABLED: 'false',
    N8N_LICENSE_AUTO_RENEW_ENABLED: 'false',
    N8N_COMMUNITY_PACKAGES_ENABLED: 'false',
    N8N_VERIFIED_PACKAGES_ENABLED: 'false',
    N8N_UNVERIFIED_PACKAGES_ENABLED: 'false',
    N8N_SENTRY_DSN: '',
    N8N_FRONTEND_SENTRY_DSN: '',
    EXTERNAL_FRONTEND_HOOKS_URLS: '',
    N8N_AI_ENABLED: 'false',
    // No task-runner child process (it would also listen on a fixed broker port, 5679 by
    // default, clashing between parallel instances); the port is set free anyway.
    N8N_RUNNERS_ENABLED: 'false',
    N8N_RUNNERS_BROKER_LISTEN_ADDRESS: '127.0.0.1',
    N8N_RUNNERS_BROKER_PORT: String(opts.runnersBrokerPort),
    // Headless: API + webhooks only.
    N8N_DISABLE_UI: 'true',
    N8N_PUBLIC_API_DISABLED: 'false',
    N8N_PUBLIC_API_SWAGGERUI_DISABLED: 'true',
    N8N_METRICS: 'false',
    EXECUTIONS_MODE: 'regular',
    // Raw webhook bytes stay inline (base64) in the execution data, readable via the API.
    N8N_DEFAULT_BINARY_DATA_MODE: 'default',
    EXECUTIONS_DATA_SAVE_ON_SUCCESS: 'all',
    EXECUTIONS_DATA_SAVE_ON_ERROR: 'all',
    // Quiet, predictable.
    N8N_ENFORCE_SETTINGS_FILE_PERMISSIONS: 'true',
    N8N_GIT_NODE_DISABLE_BARE_REPOS: 'true',
    N8N_BLOCK_ENV_ACCESS_IN_NODE: 'true',
    N8N_GRACEFUL_SHUTDOWN_TIMEOUT: '5',
    N8N_LOG_LEVEL: 'info',
    N8N_LOG_OUTPUT: 'console',
    GENERIC_TIMEZONE: 'UTC',
    TZ: 'UTC',
    NO_PROXY: '127.0.0.1,localhost',
    no_proxy: '127.0.0.1,localhost',
  };
}

/** Environment inherited from this process, minus what must not leak into n8n's Node. */
function inheritedEnv(): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (v === undefined) continue;
    if (k.startsWith('N8N_') || k.startsWith('DB_') || k.startsWith('EXECUTIONS_') || k.startsWith('QUEUE_')) continue;
    if (k === 'NODE_OPTIONS' || k === 'NODE_TEST_CONTEXT' || k === 'NODE_CHANNEL_FD' || k === 'NODE_USE_ENV_PROXY') continue;
    if (/^(https?|all)_proxy$/i.test(k)) continue;
    env[k] = v;
  }
  return env;
}

class HttpError extends Error {
  status: number;
  constructor(message: string, status: number) {
    super(message);
    this.status = status;
  }
}

/**
 * Starts a real n8n. Rejects (after stopping it) if it does not come up within
 * opts.startTimeoutMs, if it exits, or if the owner / API key cannot be set up.
 */
export async function startN8n(opts: StartN8nOptions = {}): Promise<RunningN8n> {
  const installDir = n8nInstallDir();
  const entry = join(installDir, 'node_modules', 'n8n', 'bin', 'n8n');
  if (!isN8nInstalled()) throw new Error(`${N8N_INSTALL_HINT} (looked in ${installDir})`);

  const port = opts.port ?? (await freePort());
  const runnersBrokerPort = await freePort();
  const userFolder = mkdtempSync(join(tmpdir(), 'carteiro-n8n-'));
  const logFile = join(userFolder, 'n8n.log');
  const baseUrl = `http://127.0.0.1:${port}`;
  const dispatcher = new Agent({ connect: { timeout: 5_000 }, keepAliveTimeout: 1_000 });

  const logFd = openSync(logFile, 'a');
  let child: ChildProcess;
  try {
    child = spawn(nodeBinary(), [entry, 'start'], {
      cwd: userFolder,
      env: { ...inheritedEnv(), ...n8nEnv({ port, userFolder, runnersBrokerPort }), ...opts.env },
      stdio: ['ignore', logFd, logFd],
    });
  } finally {
    closeSync(logFd);
  }
  const pid = child.pid;
  if (pid === undefined) {
    rmSync(userFolder, { recursive: true, force: true });
    throw new Error(`could not spawn n8n (${entry})`);
  }
  let exited: { code: number | null; signal: NodeJS.Signals | null } | null = null;
  const exitPromise = new Promise<void>((res) => {
    child.once('exit', (code, signal) => {
      exited = { code, signal };
      res();
    });
  });
  // If this test process dies first, do not leave n8n behind.
  const killOnExit = () => {
    if (!exited) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        /* already gone */
      }
    }
  };
  process.once('exit', killOnExit);

  const logTail = (maxBytes = 8_000): string => {
    try {
      const size = statSync(logFile).size;
      const buf = readFileSync(logFile);
      return buf.subarray(Math.max(0, size - maxBytes)).toString('utf8');
    } catch {
      return '(no n8n log)';
    }
  };

  // Waits for the child's exit, at most `ms`; leaves no timer behind.
  const exitedWithin = async (ms: number): Promise<boolean> => {
    if (exited) return true;
    const cancel = new AbortController();
    const timer = sleep(ms, false, { signal: cancel.signal, ref: false }).catch(() => false);
    const result = await Promise.race([exitPromise.then(() => true), timer]);
    cancel.abort();
    return result;
  };

  let stopped = false;
  const stop = async (timeoutMs = 15_000): Promise<void> => {
    if (stopped) return;
    stopped = true;
    if (!exited) {
      try {
        process.kill(pid, 'SIGTERM');
      } catch {
        /* already gone */
      }
      if (!(await exitedWithin(timeoutMs))) {
        try {
          process.kill(pid, 'SIGKILL');
        } catch {
          /* already gone */
        }
        await exitedWithin(5_000);
      }
    }
    process.removeListener('exit', killOnExit);
    await dispatcher.close().catch(() => {});
    rmSync(userFolder, { recursive: true, force: true });
  };

  const diagnose = (what: string) =>
    `${what}${exited ? ` (n8n exited: code ${exited.code}, signal ${exited.signal})` : ''}\n--- n8n log tail ---\n${logTail()}`;

  // --- HTTP ---------------------------------------------------------------
  async function http(
    method: string,
    path: string,
    init: { body?: unknown; headers?: Record<string, string>; timeoutMs?: number } = {},
  ): Promise<{ status: number; headers: Headers; text: string }> {
    const headers: Record<string, string> = { accept: 'application/json', ...init.headers };
    let body: string | undefined;
    if (init.body !== undefined) {
      headers['content-type'] = 'application/json';
      body = JSON.stringify(init.body);
    }
    const res = await fetch(`${baseUrl}${path}`, {
      method,
      headers,
      body,
      dispatcher,
      signal: AbortSignal.timeout(init.timeoutMs ?? REQUEST_TIMEOUT_MS),
    });
    return { status: res.status, headers: res.headers as unknown as Headers, text: await res.text() };
  }

  function parse<T>(what: string, r: { status: number; text: string }): T {
    if (r.status < 200 || r.status >= 300) {
      throw new HttpError(`${what}: HTTP ${r.status} ${r.text.slice(0, 1_000)}`, r.status);
    }
    if (r.text === '') return undefined as T;
    try {
      return JSON.parse(r.text) as T;
    } catch {
      throw new Error(`${what}: not JSON: ${r.text.slice(0, 300)}`);
    }
  }

  let apiKey = '';
  async function api<T = unknown>(method: string, path: string, body?: unknown): Promise<T> {
    const r = await http(method, `/api/v1${path}`, { body, headers: { 'x-n8n-api-key': apiKey } });
    return parse<T>(`${method} /api/v1${path}`, r);
  }

  try {
    // --- wait until the REST API answers --------------------------------
    const deadline = Date.now() + (opts.startTimeoutMs ?? 120_000);
    for (;;) {
      if (exited) throw new Error(diagnose('n8n exited during start-up'));
      if (Date.now() > deadline) throw new Error(diagnose(`n8n did not become ready within ${opts.startTimeoutMs ?? 120_000} ms`));
      try {
        const r = await http('GET', '/healthz/readiness', { timeoutMs: 2_000 });
        if (r.status === 200) {
          // And the REST API is mounted: GET /rest/login answers 401 without a session (404 before).
          const s = await http('GET', '/rest/login', { timeoutMs: 5_000 });
          if (s.status !== 404 && s.status < 500) break;
        }
      } catch {
        /* not listening yet */
      }
      await sleep(250);
    }

    // --- owner + API key ---------------------------------------------------
    const owner = { email: 'owner@carteiro.test', password: `Carteiro-${randomBytes(6).toString('hex')}1` };
    const browserId = randomUUID(); // n8n binds session cookies to this header
    const restHeaders = { 'browser-id': browserId };
    let setup = await http('POST', '/rest/owner/setup', {
      headers: restHeaders,
      body: { email: owner.email, firstName: 'Carteiro', lastName: 'Tests', password: owner.password },
    });
    if (setup.status === 400 && /already/i.test(setup.text)) {
      setup = await http('POST', '/rest/login', {
        headers: restHeaders,
        body: { emailOrLdapLoginId: owner.email, password: owner.password },
      });
    }
    parse('POST /rest/owner/setup', setup);
    const authCookie = setup.headers
      .getSetCookie()
      .map((c) => c.split(';')[0] ?? '')
      .filter((c) => c.startsWith('n8n-auth='))
      .join('; ');
    if (!authCookie) throw new Error(`owner setup gave no n8n-auth cookie: ${setup.headers.getSetCookie().join(' | ')}`);
    const session = { ...restHeaders, cookie: authCookie };

    // All scopes the owner may give an API key in this n8n version.
    const scopes = parse<{ data: string[] }>('GET /rest/api-keys/scopes', await http('GET', '/rest/api-keys/scopes', { headers: session })).data;
    const created = parse<{ data: { rawApiKey: string } }>(
      'POST /rest/api-keys',
      await http('POST', '/rest/api-keys', { headers: session, body: { label: 'carteiro-tests', scopes, expiresAt: null } }),
    );
    apiKey = created.data.rawApiKey;
    if (!apiKey) throw new Error('POST /rest/api-keys returned no rawApiKey');

    // --- public-API helpers -------------------------------------------------
    const productionUrl = (path: string) => `${baseUrl}/webhook/${path.replace(/^\/+/, '')}`;

    const activate = async (id: string) => {
      await api('POST', `/workflows/${encodeURIComponent(id)}/activate`);
    };
    const deactivate = async (id: string) => {
      await api('POST', `/workflows/${encodeURIComponent(id)}/deactivate`);
    };

    async function listTags(): Promise<N8nTag[]> {
      const out: N8nTag[] = [];
      let cursor: string | undefined;
      for (let page = 0; page < 100; page++) {
        const q = new URLSearchParams({ limit: '250' });
        if (cursor) q.set('cursor', cursor);
        const r = await api<{ data: N8nTag[]; nextCursor?: string | null }>('GET', `/tags?${q}`);
        out.push(...r.data);
        if (!r.nextCursor) break;
        cursor = r.nextCursor;
      }
      return out;
    }

    async function ensureTag(name: string): Promise<N8nTag> {
      // Longer names fail validation, and the public API reports every failure
      // of POST /tags as 409 "Tag already exists"; say what is really wrong.
      if (name.length < 1 || name.length > N8N_TAG_MAX_LENGTH) {
        throw new Error(`n8n tag names are 1-${N8N_TAG_MAX_LENGTH} characters; '${name}' has ${name.length}`);
      }
      try {
        return await api<N8nTag>('POST', '/tags', { name });
      } catch (err) {
        if (!(err instanceof HttpError) || err.status !== 409) throw err;
        const found = (await listTags()).find((t) => t.name === name);
        if (!found) throw err;
        return found;
      }
    }

    async function setTags(workflowId: string, tagNames: string[]): Promise<N8nTag[]> {
      const tags: N8nTag[] = [];
      for (const name of tagNames) tags.push(await ensureTag(name));
      return await api<N8nTag[]>(
        'PUT',
        `/workflows/${encodeURIComponent(workflowId)}/tags`,
        tags.map((t) => ({ id: t.id })),
      );
    }

    async function waitForWebhookRegistered(path: string, timeoutMs = 30_000): Promise<void> {
      const url = `/webhook/${path.replace(/^\/+/, '')}`;
      const until = Date.now() + timeoutMs;
      let last = 0;
      for (;;) {
        try {
          const r = await http('OPTIONS', url, {
            headers: { origin: 'http://127.0.0.1', 'access-control-request-method': 'POST' },
            timeoutMs: 5_000,
          });
          last = r.status;
          if (r.status === 204) return;
        } catch {
          /* retry */
        }
        if (exited) throw new Error(diagnose('n8n exited while waiting for a webhook'));
        if (Date.now() > until) throw new Error(diagnose(`webhook ${url} not registered within ${timeoutMs} ms (last OPTIONS: ${last})`));
        await sleep(200);
      }
    }

    async function createWebhookWorkflow(o: CreateWebhookWorkflowOptions): Promise<CreatedWorkflow> {
      const path = o.path.replace(/^\/+/, '');
      const options: Record<string, unknown> = {};
      if (o.rawBody) options['rawBody'] = true;
      const wf = await api<N8nWorkflow>('POST', '/workflows', {
        name: o.name,
        nodes: [
          {
            id: randomUUID(),
            name: 'Webhook',
            type: 'n8n-nodes-base.webhook',
            typeVersion: 2.1,
            position: [0, 0],
            webhookId: randomUUID(),
            parameters: { httpMethod: 'POST', path, responseMode: 'onReceived', options },
          },
        ],
        connections: {},
        settings: { executionOrder: 'v1', saveDataSuccessExecution: 'all', saveDataErrorExecution: 'all' },
      });
      if (o.tags && o.tags.length > 0) await setTags(wf.id, o.tags);
      if (o.active) {
        await activate(wf.id);
        await waitForWebhookRegistered(path);
      }
      return { id: wf.id, productionUrl: productionUrl(path) };
    }

    async function listWorkflows(query: { active?: boolean; tags?: string; name?: string } = {}): Promise<N8nWorkflow[]> {
      const out: N8nWorkflow[] = [];
      let cursor: string | undefined;
      for (let page = 0; page < 1_000; page++) {
        const q = new URLSearchParams({ limit: '250' });
        if (query.active !== undefined) q.set('active', String(query.active));
        if (query.tags) q.set('tags', query.tags);
        if (query.name) q.set('name', query.name);
        if (cursor) q.set('cursor', cursor);
        const r = await api<{ data: N8nWorkflow[]; nextCursor?: string | null }>('GET', `/workflows?${q}`);
        out.push(...r.data);
        if (!r.nextCursor) break;
        cursor = r.nextCursor;
      }
      return out;
    }

    type RawExecution = { id: string | number; status?: string; data?: unknown };
    async function listExecutions(workflowId: string): Promise<ReceivedItem[]> {
      const executions: RawExecution[] = [];
      let cursor: string | undefined;
      for (let page = 0; page < 1_000; page++) {
        const q = new URLSearchParams({ workflowId, includeData: 'true', limit: '250' });
        if (cursor) q.set('cursor', cursor);
        const r = await api<{ data: RawExecution[]; nextCursor?: string | null }>('GET', `/executions?${q}`);
        executions.push(...r.data);
        if (!r.nextCursor) break;
        cursor = r.nextCursor;
      }
      executions.sort((a, b) => Number(a.id) - Number(b.id));
      const items: ReceivedItem[] = [];
      for (const e of executions) {
        const data = e.data as
          | {
              resultData?: {
                runData?: Record<
                  string,
                  Array<{ data?: { main?: Array<Array<{ json?: Record<string, unknown>; binary?: Record<string, { data?: string }> }>> } }>
                >;
              };
            }
          | undefined;
        const item = data?.resultData?.runData?.['Webhook']?.[0]?.data?.main?.[0]?.[0];
        if (!item) continue; // not finished yet, or not a Webhook-node execution
        const json = item.json ?? {};
        const received: ReceivedItem = {
          executionId: String(e.id),
          status: String(e.status ?? ''),
          headers: (json['headers'] as Record<string, string> | undefined) ?? {},
          body: json['body'],
          query: (json['query'] as Record<string, unknown> | undefined) ?? {},
        };
        const raw = item.binary?.['data']?.data;
        if (typeof raw === 'string') received.rawBody = Buffer.from(raw, 'base64');
        items.push(received);
      }
      return items;
    }

    async function waitForExecutions(workflowId: string, count: number, timeoutMs = 30_000): Promise<ReceivedItem[]> {
      const until = Date.now() + timeoutMs;
      for (;;) {
        const items = await listExecutions(workflowId);
        if (items.length >= count) return items;
        if (Date.now() > until) throw new Error(diagnose(`workflow ${workflowId}: ${items.length} execution(s) after ${timeoutMs} ms, wanted ${count}`));
        await sleep(250);
      }
    }

    return {
      baseUrl,
      apiKey,
      pid,
      owner,
      userFolder,
      createWebhookWorkflow,
      activate,
      deactivate,
      deleteWorkflow: async (id) => {
        await api('DELETE', `/workflows/${encodeURIComponent(id)}`);
      },
      getWorkflow: (id) => api<N8nWorkflow>('GET', `/workflows/${encodeURIComponent(id)}`),
      listWorkflows,
      setTags,
      ensureTag,
      waitForWebhookRegistered,
      listExecutions,
      waitForExecutions,
      api,
      logTail,
      stop,
    };
  } catch (err) {
    await stop();
    throw err;
  }
}
