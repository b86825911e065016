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
 */
import type { Sql } from '../ledger/connection.ts';
import { insertN8nWorkflowIn, lockN8nRegistryIn, lockN8nWorkflowsIn, updateN8nWorkflowIn } from '../ledger/n8n-workflows.ts';
import { FeatureDisabledError } from '../errors/errors.ts';
import { productionUrl } from './routing.ts';
import { SEED_WORKFLOWS } from './seed-workflows.ts';
import type { WorkflowSecrets } from './workflow-secrets.ts';

export type SeedOutcome = {
  workflow_id: string;
  name: string;
  path: string;
  webhook_url: string;
  result: 'created' | 'updated' | 'unchanged' | 'present';
  /** A created workflow's own secret (WEBHOOK_SECRET unset): in this answer only, never again. */
  secret?: string;
};

export async function seedN8nWorkflows(
  sql: Sql,
  opts: { organizationId: string; baseUrl: string | undefined; secrets: WorkflowSecrets },
): Promise<SeedOutcome[]> {
  const base = opts.baseUrl;
  if (!base) throw new FeatureDisabledError('the seed workflows live at N8N_WEBHOOK_URL/webhook/<path>: set N8N_WEBHOOK_URL (or pass a base URL)');
  return sql.begin(async (tx) => {
    await lockN8nRegistryIn(tx, opts.organizationId);
    const rows = await lockN8nWorkflowsIn(tx, opts.organizationId);
    const outcomes: SeedOutcome[] = [];
    for (const s of SEED_WORKFLOWS) {
      const url = productionUrl(base, s.path);
      const out = { workflow_id: s.workflowId, name: s.name, path: s.path, webhook_url: url };
      const own = rows.find((r) => r.workflow_id === s.workflowId);
      if (own) {
        const moved = own.webhook_url !== url || own.path !== s.path;
        if (moved) await updateN8nWorkflowIn(tx, own, { webhookUrl: url, path: s.path });
        outcomes.push({ ...out, result: moved ? 'updated' : 'unchanged' });
      } else if (rows.some((r) => r.webhook_url === url)) {
        outcomes.push({ ...out, result: 'present' });
      } else {
        const own = opts.secrets.forNewWorkflow();
        await insertN8nWorkflowIn(tx, {
          organizationId: opts.organizationId,
          workflowId: s.workflowId,
          name: s.name,
          webhookUrl: url,
          path: s.path,
          eventTypes: [...s.eventTypes],
          isActive: true,
          source: 'seed',
          secretCiphertext: own?.ciphertext ?? null,
        });
        outcomes.push({ ...out, result: 'created', ...(own ? { secret: own.secret } : {}) });
      }
    }
    return outcomes;
  }) as Promise<SeedOutcome[]>;
}
