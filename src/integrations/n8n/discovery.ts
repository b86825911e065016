/**
 * Discovery: reads every workflow from n8n's public API (cursor pages), keeps those with a POST
 * Webhook trigger, and brings the organization's n8n_workflows in line with them:
 *
 *   listed, with a POST Webhook   → created (source 'discovery') or updated: name, production URL, path,
 *                                   event types (when tags, name or seed path give any; otherwise the row's
 *                                   own are kept, so routing can also be set through Carteiro's API)
 *   inactive (or archived) in n8n → the row is deactivated (its pending deliveries held), not deleted
 *   active again in n8n           → reactivated, if discovery was what deactivated it (not if a person did)
 *   a discovered row whose workflow is gone (deleted, or no POST Webhook any more) → deactivated
 *   a seeded row whose path no listed workflow has → deactivated (its events would only meet 404s);
 *                                   reactivated when a workflow with that path appears (it is then adopted)
 *
 * Every row n8n lists is marked confirmed; a seeded row it does not is marked unconfirmed, with the
 * reason. Each run's outcome, a failed one included, is kept per organization for /health.
 *
 * A workflow is matched by n8n id; failing that, a row that is not a listed workflow but has the same
 * production URL (a seed row, say, whose ids are the seed's, not this n8n's) is adopted, so one webhook
 * never gets two rows and every event twice. Pages are read first, then applied in ONE transaction
 * (serialised per organization): a failed read changes nothing.
 */
import type { Logger } from 'pino';
import type { Config } from '../../config/config.ts';
import type { Sql } from '../../ledger/connection.ts';
import {
  insertN8nWorkflowIn,
  lockN8nRegistryIn,
  lockN8nWorkflowsIn,
  n8nWorkflowActive,
  updateN8nWorkflowIn,
  type N8nConfirmation,
  type N8nWorkflowChanges,
  type N8nWorkflowRow,
} from '../../ledger/n8n-workflows.ts';
import { recordN8nDiscoveryRun } from '../../ledger/n8n-discovery-runs.ts';
import { FeatureDisabledError, N8nApiError } from '../../errors/errors.ts';
import { createN8nApi, type N8nApi, type N8nApiWorkflow } from './n8n-api.ts';
import { n8nBaseUrl, productionUrl, routeWorkflow, webhookPathOf, type RoutingSource } from './routing.ts';
import type { WorkflowSecrets } from './workflow-secrets.ts';

export const INACTIVE_IN_N8N = 'n8n: the workflow is inactive in n8n';
export const GONE_FROM_N8N = 'n8n: the workflow is gone from n8n (deleted, archived, or without a POST Webhook trigger)';
export const PATH_NOT_IN_N8N = 'n8n: no workflow in n8n has a POST Webhook at this path';
/** Reasons discovery itself gave; only rows deactivated for one of these are reactivated by it. */
const DISCOVERY_REASON_PREFIX = 'n8n:';
const MAX_PAGES = 10_000;

export type DiscoveryResult = {
  pages: number;
  listed: number;
  webhook_workflows: number;
  created: number;
  updated: number;
  unchanged: number;
  deactivated: number;
  reactivated: number;
  /** Listed workflows without a POST Webhook trigger. */
  skipped: number;
};

export type DiscoveredWorkflow = {
  workflowId: string;
  name: string;
  active: boolean;
  path: string;
  webhookUrl: string;
  eventTypes: string[];
  routing: RoutingSource;
};

/** `secrets`: what a new workflow is signed with (its own secret without WEBHOOK_SECRET; nobody sees it until rotated). */
export type DiscoveryDeps = { sql: Sql; config: Config; secrets: WorkflowSecrets; log?: Logger | undefined; api?: N8nApi | undefined };

export async function discoverN8nWorkflows(deps: DiscoveryDeps, opts: { organizationId: string; pageSize?: number | undefined }): Promise<DiscoveryResult> {
  const { config } = deps;
  if (!config.n8n.apiUrl) throw new FeatureDisabledError('n8n discovery needs N8N_API_URL (and N8N_API_KEY) set: docs/n8n.md');
  let served: ServedWebhooks;
  try {
    served = await readServedWebhooks(config, { api: deps.api, pageSize: opts.pageSize });
  } catch (err) {
    // Kept for /health: "discovery fails" is what an operator needs to see, not only a log line.
    if (err instanceof N8nApiError) {
      deps.log?.warn({ organization: opts.organizationId, err: err.message }, 'n8n discovery failed');
      await recordN8nDiscoveryRun(deps.sql, opts.organizationId, { ok: false, error: err.message }).catch(() => {});
    }
    throw err;
  }
  const { workflows, pages, found } = served;
  const counts = await applyDiscovery(deps, opts.organizationId, served, new Set(workflows.map((w) => w.id)));
  const result: DiscoveryResult = { pages, listed: workflows.length, webhook_workflows: found.length, skipped: workflows.length - found.length, ...counts };
  await recordN8nDiscoveryRun(deps.sql, opts.organizationId, { ok: true, result });
  deps.log?.info({ organization: opts.organizationId, ...result }, 'n8n discovery finished');
  return result;
}

/** Every workflow n8n's API lists, and those of them with a POST Webhook, as destinations. */
export type ServedWebhooks = { workflows: N8nApiWorkflow[]; pages: number; found: DiscoveredWorkflow[]; base: string };

/** Reads every page of n8n's workflow list (N8N_API_URL must be set); an N8nApiError when n8n says no. */
export async function readServedWebhooks(config: Config, opts: { api?: N8nApi | undefined; pageSize?: number | undefined } = {}): Promise<ServedWebhooks> {
  const apiUrl = config.n8n.apiUrl;
  if (!apiUrl) throw new FeatureDisabledError("reading n8n's workflows needs N8N_API_URL (and N8N_API_KEY) set: docs/n8n.md");
  const api = opts.api ?? createN8nApi({ apiUrl, apiKey: config.n8n.apiKey, timeoutMs: config.n8n.apiTimeoutMs });
  const { workflows, pages } = await readAllWorkflows(api, opts.pageSize ?? config.n8n.discoveryPageSize);
  const base = n8nBaseUrl(config.n8n.webhookUrl ?? apiUrl);
  const found = workflows.map((w) => describeWorkflow(w, base)).filter((w): w is DiscoveredWorkflow => w !== null);
  return { workflows, pages, found, base };
}

/** What n8n's list says about a webhook path: confirmed when an active workflow serves it. */
export function confirmationOf(path: string | null, found: readonly DiscoveredWorkflow[]): N8nConfirmation {
  const at = path === null ? [] : found.filter((f) => f.path === path);
  if (at.some((f) => f.active)) return { confirmed: true, note: null };
  return { confirmed: false, note: at.length ? INACTIVE_IN_N8N : PATH_NOT_IN_N8N };
}

async function readAllWorkflows(api: N8nApi, pageSize: number): Promise<{ workflows: N8nApiWorkflow[]; pages: number }> {
  const workflows: N8nApiWorkflow[] = [];
  const seen = new Set<string>();
  let cursor: string | undefined;
  let pages = 0;
  for (;;) {
    const page = await api.listWorkflows({ limit: pageSize, cursor });
    pages++;
    workflows.push(...page.data);
    if (!page.nextCursor) break;
    if (seen.has(page.nextCursor) || pages >= MAX_PAGES) throw new N8nApiError(`n8n API: workflow pages do not end (cursor repeated after ${pages} pages)`);
    seen.add(page.nextCursor);
    cursor = page.nextCursor;
  }
  // A workflow changed between two page reads can be listed twice: the later read wins.
  return { workflows: [...new Map(workflows.map((w) => [w.id, w])).values()], pages };
}

/** A listed workflow as a destination, or null when it has no POST Webhook trigger. The published version's nodes win. */
export function describeWorkflow(w: N8nApiWorkflow, base: string): DiscoveredWorkflow | null {
  const nodes = w.activeVersion?.nodes ?? w.nodes ?? [];
  const path = webhookPathOf(nodes);
  if (!path) return null;
  const route = routeWorkflow({ name: w.name, tags: (w.tags ?? []).map((t) => t.name), path });
  return {
    workflowId: w.id,
    name: w.name,
    active: w.active === true && w.isArchived !== true,
    path,
    webhookUrl: productionUrl(base, path),
    eventTypes: route.eventTypes,
    routing: route.source,
  };
}

type Counts = Pick<DiscoveryResult, 'created' | 'updated' | 'unchanged' | 'deactivated' | 'reactivated'>;

async function applyDiscovery(deps: DiscoveryDeps, organizationId: string, served: ServedWebhooks, listedIds: Set<string>): Promise<Counts> {
  const { sql, secrets, log } = deps;
  const { found, base } = served;
  const notes: { level: 'info' | 'warn'; row: N8nWorkflowRow; msg: string }[] = [];
  const counts = (await sql.begin(async (tx) => {
    const counts: Counts = { created: 0, updated: 0, unchanged: 0, deactivated: 0, reactivated: 0 };
    await lockN8nRegistryIn(tx, organizationId);
    const rows = await lockN8nWorkflowsIn(tx, organizationId);
    const byWorkflowId = new Map(rows.map((r) => [r.workflow_id, r]));
    const claimed = new Set<string>();
    for (const f of found) {
      const row = byWorkflowId.get(f.workflowId) ?? rows.find((r) => !claimed.has(r.id) && !listedIds.has(r.workflow_id) && r.webhook_url === f.webhookUrl);
      if (!row) {
        const created = await insertN8nWorkflowIn(tx, {
          organizationId,
          workflowId: f.workflowId,
          name: f.name,
          webhookUrl: f.webhookUrl,
          path: f.path,
          eventTypes: f.eventTypes,
          isActive: f.active,
          inactiveReason: INACTIVE_IN_N8N,
          source: 'discovery',
          secretCiphertext: secrets.forNewWorkflow()?.ciphertext ?? null,
          state: f.active ? 'active' : 'inactive',
          discovered: true,
          confirmation: f.active ? { confirmed: true, note: null } : { confirmed: false, note: INACTIVE_IN_N8N },
        });
        claimed.add(created.id);
        counts.created++;
        continue;
      }
      claimed.add(row.id);
      const changes = changesFor(row, f);
      const edited =
        changes.workflowId !== undefined ||
        changes.name !== undefined ||
        changes.webhookUrl !== undefined ||
        changes.path !== undefined ||
        changes.eventTypes !== undefined;
      if (changes.active?.isActive === false) counts.deactivated++;
      else if (changes.active?.isActive === true) {
        counts.reactivated++;
        if (row.source === 'seed') notes.push({ level: 'info', row, msg: `n8n discovery: seeded workflow reactivated, n8n has its path again (${f.path})` });
      }
      if (edited) counts.updated++;
      else if (!changes.active) counts.unchanged++;
      await updateN8nWorkflowIn(tx, row, changes);
    }
    for (const row of rows) {
      if (claimed.has(row.id)) continue;
      if (row.source === 'discovery') {
        if (!n8nWorkflowActive(row)) continue;
        await updateN8nWorkflowIn(tx, row, {
          state: 'inactive',
          active: { isActive: false, reason: GONE_FROM_N8N },
          confirmation: { confirmed: false, note: GONE_FROM_N8N },
        });
        counts.deactivated++;
      } else if (row.source === 'seed' && row.path !== null && row.webhook_url === productionUrl(base, row.path)) {
        // Not adopted: no listed workflow has its URL. Only a row on this n8n's base URL is judged: one
        // seeded at another base (--base-url) is on a host this API does not describe.
        const confirmation = confirmationOf(row.path, found);
        const stop = confirmation.confirmed === false && confirmation.note === PATH_NOT_IN_N8N && n8nWorkflowActive(row);
        await updateN8nWorkflowIn(tx, row, { confirmation, ...(stop ? { state: 'inactive', active: { isActive: false, reason: PATH_NOT_IN_N8N } } : {}) });
        if (stop) {
          counts.deactivated++;
          notes.push({
            level: 'warn',
            row,
            msg: `n8n discovery: seeded workflow deactivated, no workflow in n8n has a POST Webhook at its path (${row.path})`,
          });
        }
      }
    }
    return counts;
  })) as Counts;
  for (const n of notes) log?.[n.level]({ organization: organizationId, workflow_id: n.row.workflow_id, id: n.row.id, path: n.row.path }, n.msg);
  return counts;
}

function changesFor(row: N8nWorkflowRow, f: DiscoveredWorkflow): N8nWorkflowChanges {
  const c: N8nWorkflowChanges = {
    source: 'discovery',
    state: f.active ? 'active' : 'inactive',
    discovered: true,
    confirmation: f.active ? { confirmed: true, note: null } : { confirmed: false, note: INACTIVE_IN_N8N },
  };
  if (row.workflow_id !== f.workflowId) c.workflowId = f.workflowId;
  if (row.name !== f.name) c.name = f.name;
  if (row.webhook_url !== f.webhookUrl) c.webhookUrl = f.webhookUrl;
  if (row.path !== f.path) c.path = f.path;
  // No routing from n8n: keep what the row has (it may have been set through Carteiro's API).
  if (f.eventTypes.length && [...row.event_types].sort().join(',') !== f.eventTypes.join(',')) c.eventTypes = f.eventTypes;
  if (!f.active && n8nWorkflowActive(row)) c.active = { isActive: false, reason: INACTIVE_IN_N8N };
  if (f.active && !n8nWorkflowActive(row) && row.disabled_reason?.startsWith(DISCOVERY_REASON_PREFIX)) c.active = { isActive: true, reason: null };
  return c;
}
