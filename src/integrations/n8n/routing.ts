/**
 * Pure pieces of the n8n integration: where a workflow's webhook listens, and which event types it
 * receives (the routing convention, docs/n8n.md).
 *
 * Routing, first match wins:
 *   1. tags `on:<event filter>` (or `carteiro:<event filter>`), one tag per type. n8n caps tag names
 *      at 24 characters, so a tag carries a filter of up to 21 (`on:user.registered`, `on:agent.*`);
 *   2. together with 1, a bracketed list at the END of the workflow's name, for types too long for a
 *      tag: `WhatsApp Integration [integration.whatsapp.connected]`, `Sales [payment.*, agent.created]`;
 *   3. only when 1 and 2 name nothing: the seed's seven paths (user-registration ← user.registered, …).
 * Anything that is not a valid event filter is ignored (a tag like `on:Hello World` routes nothing).
 */
import { isValidEventFilter } from '../../catalog/patterns.ts';
import { SEED_PATH_EVENTS } from './seed-workflows.ts';
import { ValidationError } from '../../errors/errors.ts';

export const WEBHOOK_NODE_TYPE = 'n8n-nodes-base.webhook';
export const ROUTING_TAG_PREFIXES = ['on:', 'carteiro:'] as const;
const NAME_LIST = /\[([^\][]*)\]\s*$/;

export type RoutingSource = 'tags' | 'name' | 'tags+name' | 'seed-path' | 'none';

/** The event filters a workflow's tags and name ask for, or the seed's for its path. Sorted, unique. */
export function routeWorkflow(w: { name: string; tags: readonly string[]; path: string }): { eventTypes: string[]; source: RoutingSource } {
  const fromTags = w.tags.flatMap((tag) => {
    const t = tag.trim().toLowerCase();
    const prefix = ROUTING_TAG_PREFIXES.find((p) => t.startsWith(p));
    const filter = prefix ? t.slice(prefix.length).trim() : '';
    return filter && isValidEventFilter(filter) ? [filter] : [];
  });
  const fromName = eventTypesInName(w.name);
  if (fromTags.length || fromName.length) {
    return {
      eventTypes: uniqueSorted([...fromTags, ...fromName]),
      source: fromTags.length && fromName.length ? 'tags+name' : fromTags.length ? 'tags' : 'name',
    };
  }
  const seed = SEED_PATH_EVENTS.get(w.path);
  return seed ? { eventTypes: [...seed], source: 'seed-path' } : { eventTypes: [], source: 'none' };
}

/** `Sales [payment.*, agent.created]` → ['agent.created', 'payment.*']; a list with anything invalid counts as no list. */
export function eventTypesInName(name: string): string[] {
  const m = NAME_LIST.exec(name);
  if (!m) return [];
  const items = (m[1] as string)
    .split(/[\s,]+/)
    .map((s) => s.trim().toLowerCase())
    .filter(Boolean);
  return items.length && items.every(isValidEventFilter) ? uniqueSorted(items) : [];
}

function uniqueSorted(list: string[]): string[] {
  return [...new Set(list)].sort();
}

/** A node as n8n's public API lists it (the fields used here). */
export type N8nNode = { type?: unknown; disabled?: unknown; webhookId?: unknown; parameters?: Record<string, unknown> | null };

/**
 * The path of the workflow's first enabled Webhook trigger that accepts POST: `parameters.path`, or the
 * node's webhookId when the path is empty (n8n's own default). Dynamic paths (`user/:id`) are skipped:
 * their URL depends on the request.
 */
export function webhookPathOf(nodes: readonly N8nNode[]): string | null {
  for (const node of nodes) {
    if (node.type !== WEBHOOK_NODE_TYPE || node.disabled === true) continue;
    const p = node.parameters ?? {};
    // httpMethod is a string, or with "multiple methods" on, a list; n8n's default is GET.
    const methods = Array.isArray(p.httpMethod) ? p.httpMethod : [p.httpMethod ?? 'GET'];
    if (!methods.some((m) => String(m).toUpperCase() === 'POST')) continue;
    const raw = typeof p.path === 'string' && p.path.trim() ? p.path.trim() : typeof node.webhookId === 'string' ? node.webhookId : '';
    const path = raw.replace(/^\/+|\/+$/g, '');
    if (!path || path.includes(':')) continue;
    return path;
  }
  return null;
}

/**
 * n8n's base URL from N8N_WEBHOOK_URL or N8N_API_URL: no trailing slash, and without a trailing
 * `/webhook` or `/api/v1`, so both `https://n8n.example.com` and `https://n8n.example.com/api/v1` work.
 */
export function n8nBaseUrl(url: string): string {
  return url.replace(/\/+$/, '').replace(/\/(webhook|api\/v1)$/, '');
}

export function productionUrl(base: string, path: string): string {
  return `${n8nBaseUrl(base)}/webhook/${path}`;
}

/**
 * The stored path's bound, in UTF-8 bytes: it is indexed (n8n_workflows_path), and a btree entry holds
 * at most 2704 bytes. Any ASCII path a webhook_url (≤ 2048 characters) can carry fits; only long
 * non-ASCII paths, three bytes a character, get past it.
 */
const MAX_WEBHOOK_PATH_BYTES = 2048;

/**
 * The path of an n8n production URL (`…/webhook/<path>`), decoded, or null. Throws ValidationError
 * naming webhook_url for a path that does not decode (`%ZZ`, a cut UTF-8 sequence) or is too long to store.
 */
export function pathOfUrl(webhookUrl: string): string | null {
  const i = webhookUrl.lastIndexOf('/webhook/');
  if (i < 0) return null;
  const raw = webhookUrl.slice(i + '/webhook/'.length).split(/[?#]/)[0] ?? '';
  if (!raw) return null;
  let path: string;
  try {
    path = decodeURIComponent(raw);
  } catch {
    throw new ValidationError('webhook_url: the path after /webhook/ has a malformed percent-escape (each % must start a UTF-8 byte as %XX)', {
      field: 'webhook_url',
    });
  }
  const bytes = Buffer.byteLength(path, 'utf8');
  if (bytes > MAX_WEBHOOK_PATH_BYTES) {
    throw new ValidationError(`webhook_url: the path after /webhook/ is ${bytes} bytes in UTF-8; at most ${MAX_WEBHOOK_PATH_BYTES} can be stored`, {
      field: 'webhook_url',
    });
  }
  return path;
}
