/**
 * The operator CLI's HTTP client: JSON requests to a running Carteiro's API, and its live stream
 * (`GET /live`, Server-Sent Events). Where it points and with what key: flags first, then
 * CARTEIRO_URL / CARTEIRO_API_KEY, then the local server (`HOST`/`PORT`) with CARTEIRO_ADMIN_KEY or the
 * admin key the embedded default generated in its data folder.
 */
import type { Config } from '../config/config.ts';
import { readLocalAdminKey } from '../runtime/local-keys.ts';
import { UsageError } from './sub-command.ts';

/** The API answered with an error, or could not be reached (status 0). Exit code 1. */
export class ApiError extends Error {
  readonly status: number;
  readonly body: unknown;
  constructor(message: string, status: number, body?: unknown) {
    super(message);
    this.status = status;
    this.body = body;
  }
}

export type ApiOptions = { url?: string | undefined; apiKey?: string | undefined };

export type ApiClient = {
  baseUrl: string;
  request<T = Record<string, unknown>>(
    method: string,
    path: string,
    opts?: { body?: unknown; query?: Record<string, string | number | undefined> },
  ): Promise<T>;
  /** Follows GET `path` as Server-Sent Events until `signal` aborts or the server ends the stream. */
  stream(path: string, onEvent: (type: string, data: string) => void, signal: AbortSignal): Promise<void>;
};

function localUrl(config: Config): string {
  const host = ['0.0.0.0', '::', ''].includes(config.http.host) ? '127.0.0.1' : config.http.host;
  return `http://${host.includes(':') ? `[${host}]` : host}:${config.http.port}/api/webhooks`;
}

export function connectApi(config: Config, opts: ApiOptions): ApiClient {
  const baseUrl = (opts.url ?? config.client.url ?? localUrl(config)).replace(/\/+$/, '');
  try {
    new URL(baseUrl);
  } catch {
    throw new UsageError(`--url: "${baseUrl}" is not a URL`);
  }
  const key = opts.apiKey ?? config.client.apiKey ?? config.keys.adminKey ?? readLocalAdminKey(config);
  if (!key) throw new UsageError('no API key: pass --api-key, or set CARTEIRO_API_KEY (or CARTEIRO_ADMIN_KEY)');
  const auth = { authorization: `Bearer ${key}` };

  async function send(
    method: string,
    path: string,
    init: { body?: unknown; query?: Record<string, string | number | undefined>; signal?: AbortSignal; accept?: string },
  ): Promise<Response> {
    const url = new URL(baseUrl + path);
    for (const [k, v] of Object.entries(init.query ?? {})) if (v !== undefined) url.searchParams.set(k, String(v));
    const headers: Record<string, string> = { ...auth, accept: init.accept ?? 'application/json' };
    if (init.body !== undefined) headers['content-type'] = 'application/json';
    try {
      return await fetch(url, { method, headers, body: init.body === undefined ? null : JSON.stringify(init.body), signal: init.signal ?? null });
    } catch (err) {
      if ((err as Error).name === 'AbortError') throw err;
      const cause = (err as { cause?: { code?: string; message?: string } }).cause;
      throw new ApiError(`cannot reach Carteiro at ${baseUrl}: ${cause?.code ?? cause?.message ?? (err as Error).message}`, 0);
    }
  }

  async function failure(res: Response): Promise<ApiError> {
    const text = await res.text().catch(() => '');
    let body: unknown = text;
    try {
      body = JSON.parse(text);
    } catch {}
    const message = (body as { message?: string } | null)?.message ?? (text.slice(0, 300) || res.statusText);
    return new ApiError(`${res.status} ${message}`, res.status, body);
  }

  return {
    baseUrl,
    async request(method, path, opts = {}) {
      const res = await send(method, path, opts);
      if (!res.ok) throw await failure(res);
      const text = await res.text();
      return (text ? JSON.parse(text) : {}) as never;
    },
    async stream(path, onEvent, signal) {
      const res = await send('GET', path, { signal, accept: 'text/event-stream' });
      if (!res.ok) throw await failure(res);
      if (!res.body) return;
      const decoder = new TextDecoder();
      let buffer = '';
      try {
        for await (const chunk of res.body) {
          buffer += decoder.decode(chunk as Uint8Array, { stream: true });
          let end = buffer.indexOf('\n\n');
          while (end >= 0) {
            const frame = buffer.slice(0, end);
            buffer = buffer.slice(end + 2);
            let type = 'message';
            const data: string[] = [];
            for (const line of frame.split('\n')) {
              if (line.startsWith('event:')) type = line.slice(6).trim();
              else if (line.startsWith('data:')) data.push(line.slice(5).trimStart());
            }
            if (data.length) onEvent(type, data.join('\n'));
            end = buffer.indexOf('\n\n');
          }
        }
      } catch (err) {
        if (!signal.aborted) throw new ApiError(`the live stream broke: ${(err as Error).message}`, 0);
      }
    },
  };
}
