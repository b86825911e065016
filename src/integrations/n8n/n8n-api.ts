/**
 * The little of n8n's public REST API Carteiro reads: the workflow list (cursor pages) for discovery,
 * and a cheap call for /health. Every call has a timeout (N8N_API_TIMEOUT_MS); any failure is an
 * N8nApiError naming what went wrong, never a hang.
 */
import { request } from 'undici';
import { N8nApiError } from '../../errors/errors.ts';
import { n8nBaseUrl, type N8nNode } from './routing.ts';

export const N8N_API_KEY_HEADER = 'x-n8n-api-key';
const MAX_ERROR_TEXT = 300;

/** A workflow as GET /api/v1/workflows lists it (the fields discovery reads). */
export type N8nApiWorkflow = {
  id: string;
  name: string;
  active: boolean;
  isArchived?: boolean;
  nodes?: N8nNode[];
  tags?: { id?: string; name: string }[];
  /** The published version, on n8n versions that keep drafts apart from what runs. */
  activeVersion?: { nodes?: N8nNode[] } | null;
};

export type N8nWorkflowPage = { data: N8nApiWorkflow[]; nextCursor: string | null };

export type N8nApi = {
  listWorkflows(opts: { limit: number; cursor?: string | undefined }): Promise<N8nWorkflowPage>;
  /** 'reachable': the API answered (with the key, a 2xx); 'unhealthy': it answered but refused the key; 'unreachable': no answer. */
  probe(): Promise<'reachable' | 'unreachable' | 'unhealthy'>;
};

export function createN8nApi(opts: { apiUrl: string; apiKey: string | undefined; timeoutMs: number }): N8nApi {
  const base = n8nBaseUrl(opts.apiUrl);
  const headers: Record<string, string> = { accept: 'application/json' };
  if (opts.apiKey) headers[N8N_API_KEY_HEADER] = opts.apiKey;

  async function get(path: string): Promise<{ status: number; text: string }> {
    const res = await request(`${base}${path}`, {
      method: 'GET',
      headers,
      headersTimeout: opts.timeoutMs,
      bodyTimeout: opts.timeoutMs,
      signal: AbortSignal.timeout(opts.timeoutMs),
    });
    return { status: res.statusCode, text: await res.body.text() };
  }

  return {
    async listWorkflows({ limit, cursor }) {
      const q = new URLSearchParams({ limit: String(limit), excludePinnedData: 'true' });
      if (cursor) q.set('cursor', cursor);
      const path = `/api/v1/workflows?${q}`;
      let res: { status: number; text: string };
      try {
        res = await get(path);
      } catch (err) {
        throw new N8nApiError(`n8n API at ${base} did not answer GET /api/v1/workflows: ${(err as Error).message}`);
      }
      if (res.status === 401 || res.status === 403) {
        throw new N8nApiError(`n8n API at ${base} refused the key (HTTP ${res.status}): check N8N_API_KEY`, { status: res.status });
      }
      if (res.status !== 200) {
        throw new N8nApiError(`n8n API at ${base} answered HTTP ${res.status} to GET /api/v1/workflows: ${res.text.slice(0, MAX_ERROR_TEXT)}`, {
          status: res.status,
        });
      }
      let body: { data?: unknown; nextCursor?: unknown };
      try {
        body = JSON.parse(res.text) as typeof body;
      } catch {
        throw new N8nApiError(`n8n API at ${base} answered GET /api/v1/workflows with something that is not JSON`);
      }
      if (!Array.isArray(body?.data)) throw new N8nApiError(`n8n API at ${base}: GET /api/v1/workflows has no "data" list`);
      const data = (body.data as N8nApiWorkflow[]).filter((w) => w && typeof w.id === 'string');
      return { data, nextCursor: typeof body.nextCursor === 'string' && body.nextCursor ? body.nextCursor : null };
    },

    async probe() {
      try {
        // With a key, a one-item workflow list proves the key too; without one, n8n's liveness route.
        const res = await get(opts.apiKey ? '/api/v1/workflows?limit=1&excludePinnedData=true' : '/healthz');
        if (res.status >= 200 && res.status < 300) return 'reachable';
        return res.status === 401 || res.status === 403 ? 'unhealthy' : 'unreachable';
      } catch {
        return 'unreachable';
      }
    },
  };
}
