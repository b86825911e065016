/**
 * The secrets that sign n8n workflows. In the seed's design WEBHOOK_SECRET signs every workflow; with
 * it unset a workflow without a secret of its own would go out unsigned. So then every workflow gets
 * its own: generated, sealed at rest, shown once and rotatable, exactly like an endpoint's secret.
 * With WEBHOOK_SECRET set, workflows keep being signed with it unless given their own.
 */
import type { Logger } from 'pino';
import type { Sql } from '../../ledger/connection.ts';
import type { SecretBox } from '../../crypto/secret-box.ts';
import { generateWebhookSecret } from '../../delivery/signature.ts';
import { listN8nEndpointsWithoutSecret, setN8nEndpointSecretIfUnset } from '../../ledger/n8n-workflows.ts';

export type NewWorkflowSecret = { secret: string; ciphertext: string };

export type WorkflowSecrets = {
  /** Whether WEBHOOK_SECRET is set, so a workflow may go without a secret of its own. */
  sharedSecretSet: boolean;
  /** A fresh secret and its ciphertext (the plain one is for showing once, never for storing). */
  generate(): NewWorkflowSecret;
  /** A new workflow's own secret, or null when WEBHOOK_SECRET signs it. */
  forNewWorkflow(): NewWorkflowSecret | null;
};

/** `box` is asked for only when a secret is sealed (the CLI then reads the encryption keys). */
export function createWorkflowSecrets(box: () => SecretBox, webhookSecret: string | undefined): WorkflowSecrets {
  const generate = (): NewWorkflowSecret => {
    const secret = generateWebhookSecret();
    return { secret, ciphertext: box().seal(secret) };
  };
  return {
    sharedSecretSet: webhookSecret !== undefined,
    generate,
    forNewWorkflow: () => (webhookSecret !== undefined ? null : generate()),
  };
}

/**
 * Without WEBHOOK_SECRET, gives every workflow that has no secret of its own one (those registered
 * while it was set, or before workflows had secrets). Nobody has seen these: the log names the
 * workflows, never the secret, and rotating one (POST /n8n/workflows/:id/rotate-secret) shows a new one.
 */
export async function signUnsignedWorkflows(sql: Sql, secrets: WorkflowSecrets, log: Logger): Promise<number> {
  if (secrets.sharedSecretSet) return 0;
  const unsigned = await listN8nEndpointsWithoutSecret(sql);
  const signed: string[] = [];
  for (const w of unsigned) {
    if (await setN8nEndpointSecretIfUnset(sql, w.endpoint_id, secrets.generate().ciphertext)) signed.push(w.workflow_id);
  }
  if (signed.length) {
    log.warn(
      { workflows: signed },
      'WEBHOOK_SECRET is not set: these n8n workflows had no secret of their own and were given one; rotate each (POST /api/webhooks/n8n/workflows/:id/rotate-secret) to see it and configure n8n to verify it',
    );
  }
  return signed.length;
}
