/**
 * Loads the seed's seven workflows (seed-workflows.ts) into an organization, at
 * <N8N_WEBHOOK_URL>/webhook/<path>: `carteiro n8n seed` and POST /n8n/workflows/seed.
 *
 * Idempotent. A seed workflow already there (same workflow id) only follows a changed base URL; its
 * name, event types and activation are left as the user set them. One whose webhook URL some other
 * row already has (discovery found it under this n8n's own id) is not added again, or every event
 * would arrive twice.
 *
 * Without WEBHOOK_SECRET each workflow created gets a secret of its own, in the outcome (shown once).
 *
 * With n8n's API configured (N8N_API_URL), each seed path is checked against the workflows n8n lists
 * (`served`, read before the transaction): confirmed when an active workflow has a POST Webhook there.
 * One n8n does not have is marked unconfirmed and left inactive, since every event of its types would
 * otherwise go through all its attempts to a 404; discovery reactivates it when the path appears. When
 * the API could not be read the rows stay active, marked unconfirmed with the error. Without the API
 * nothing is checked (confirmed: null).
 */
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
import { confirmationOf, INACTIVE_IN_N8N, PATH_NOT_IN_N8N, readServedWebhooks, type DiscoveredWorkflow } from './discovery.ts';
import { FeatureDisabledError, N8nApiError } from '../../errors/errors.ts';
import type { N8nApi } from './n8n-api.ts';
import { n8nBaseUrl, productionUrl } from './routing.ts';
import { SEED_WORKFLOWS } from './seed-workflows.ts';
import type { WorkflowSecrets } from './workflow-secrets.ts';

export type SeedOutcome = {
  workflow_id: string;
  name: string;
  path: string;
  webhook_url: string;
  result: 'created' | 'updated' | 'unchanged' | 'present';
  /** Whether n8n's API listed an active POST Webhook at the path; null: not checked (no N8N_API_URL). */
  confirmed: boolean | null;
  /** Why it is not confirmed. */
  note: string | null;
  is_active: boolean;
  /** A created workflow's own secret (WEBHOOK_SECRET unset): in this answer only, never again. */
  secret?: string;
};

/** What n8n's API said, read before seeding: its webhook workflows, or why it could not be read; null when not configured. */
export type SeedCheck = { ok: true; found: readonly DiscoveredWorkflow[] } | { ok: false; error: string; checked?: false } | null;

const OTHER_BASE = "not checked: the seed's base URL is not the n8n that N8N_API_URL describes (N8N_WEBHOOK_URL)";

/**
 * Asks n8n's API for its webhook workflows when N8N_API_URL is set and the seed goes to the n8n it
 * describes (base N8N_WEBHOOK_URL, else N8N_API_URL's); a refusal or no answer is kept, not thrown.
 */
export async function checkSeedPaths(config: Config, baseUrl: string, api?: N8nApi): Promise<SeedCheck> {
  const { apiUrl, webhookUrl } = config.n8n;
  if (!apiUrl) return null;
  if (n8nBaseUrl(baseUrl) !== n8nBaseUrl(webhookUrl ?? apiUrl)) return { ok: false, error: OTHER_BASE, checked: false };
  try {
    return { ok: true, found: (await readServedWebhooks(config, { api })).found };
  } catch (err) {
    if (err instanceof N8nApiError) return { ok: false, error: err.message };
    throw err;
  }
}

export async function seedN8nWorkflows(
  sql: Sql,
  opts: { organizationId: string; baseUrl: string | undefined; secrets: WorkflowSecrets; served?: SeedCheck },
): Promise<SeedOutcome[]> {
  const served = opts.served ?? null;
  const base = opts.baseUrl;
  if (!base) throw new FeatureDisabledError('the seed workflows live at N8N_WEBHOOK_URL/webhook/<path>: set N8N_WEBHOOK_URL (or pass a base URL)');
  return sql.begin(async (tx) => {
    await lockN8nRegistryIn(tx, opts.organizationId);
    const rows = await lockN8nWorkflowsIn(tx, opts.organizationId);
    const outcomes: SeedOutcome[] = [];
    for (const s of SEED_WORKFLOWS) {
      const url = productionUrl(base, s.path);
      const confirmation = confirmSeedPath(s.path, served);
      const out = { workflow_id: s.workflowId, name: s.name, path: s.path, webhook_url: url, confirmed: confirmation.confirmed, note: confirmation.note };
      const own = rows.find((r) => r.workflow_id === s.workflowId);
      if (own) {
        const moved = own.webhook_url !== url || own.path !== s.path;
        const changes: N8nWorkflowChanges = { ...(moved ? { webhookUrl: url, path: s.path } : {}), ...activationFor(own, confirmation) };
        // Asked and answered (or failed): recorded. Not asked: the row keeps what it last had.
        const asked = confirmation.confirmed !== null;
        if (asked) changes.confirmation = confirmation;
        const row = moved || changes.active || asked ? await updateN8nWorkflowIn(tx, own, changes) : own;
        outcomes.push({
          ...out,
          ...(asked ? {} : { confirmed: own.confirmed, note: own.confirmed === null ? confirmation.note : own.confirmation_note }),
          result: moved ? 'updated' : 'unchanged',
          is_active: n8nWorkflowActive(row),
        });
      } else if (rows.some((r) => r.webhook_url === url)) {
        const other = rows.find((r) => r.webhook_url === url) as N8nWorkflowRow;
        outcomes.push({ ...out, result: 'present', is_active: n8nWorkflowActive(other) });
      } else {
        const own = opts.secrets.forNewWorkflow();
        const isActive = !missing(confirmation);
        await insertN8nWorkflowIn(tx, {
          organizationId: opts.organizationId,
          workflowId: s.workflowId,
          name: s.name,
          webhookUrl: url,
          path: s.path,
          eventTypes: [...s.eventTypes],
          isActive,
          inactiveReason: confirmation.note,
          source: 'seed',
          secretCiphertext: own?.ciphertext ?? null,
          ...(confirmation.confirmed !== null ? { confirmation } : {}),
        });
        outcomes.push({ ...out, result: 'created', is_active: isActive, ...(own ? { secret: own.secret } : {}) });
      }
    }
    return outcomes;
  }) as Promise<SeedOutcome[]>;
}

const NOT_CHECKED = 'not checked: N8N_API_URL is not set, so n8n was not asked whether this path exists';

function confirmSeedPath(path: string, served: SeedCheck): N8nConfirmation {
  if (served === null) return { confirmed: null, note: NOT_CHECKED };
  if (!served.ok) return served.checked === false ? { confirmed: null, note: served.error } : { confirmed: false, note: `could not ask n8n: ${served.error}` };
  return confirmationOf(path, served.found);
}

/** n8n answered and has no active workflow at the path: deliveries would only meet 404s. */
function missing(c: N8nConfirmation): boolean {
  return c.note === PATH_NOT_IN_N8N || c.note === INACTIVE_IN_N8N;
}

/**
 * A row already there follows what n8n says, as discovery would: deactivated when n8n has no active
 * workflow at its path; reactivated when it has one again, if n8n's absence was why it was inactive.
 */
function activationFor(row: N8nWorkflowRow, c: N8nConfirmation): N8nWorkflowChanges {
  const active = n8nWorkflowActive(row);
  if (missing(c) && active) return { active: { isActive: false, reason: c.note } };
  if (c.confirmed === true && !active && row.disabled_reason?.startsWith('n8n:')) return { active: { isActive: true, reason: null } };
  return {};
}
