/**
 * Wires the n8n integration into a Carteiro process (runtime/compose.ts): the 'n8n-discovery' job, its
 * optional schedule (N8N_DISCOVERY_INTERVAL_MS), n8n's line in /health, and a secret for every
 * workflow when WEBHOOK_SECRET is unset.
 */
import type { Logger } from 'pino';
import type { Config } from '../../config/config.ts';
import type { Ledger } from '../../ledger/connection.ts';
import type { SecretBox } from '../../crypto/secret-box.ts';
import type { JobRunner } from '../../jobs/job-runner.ts';
import { DEFAULT_ORGANIZATION_ID } from '../../tenancy/principal.ts';
import { discoverN8nWorkflows } from './discovery.ts';
import { createN8nApi } from './n8n-api.ts';
import { createWorkflowSecrets, signUnsignedWorkflows, type WorkflowSecrets } from './workflow-secrets.ts';

const HEALTH_TIMEOUT_MS = 2_000;
/** Load balancers poll /health often; n8n is asked at most this often per process. */
const HEALTH_CACHE_MS = 2_000;

/** What the integration is wired with. */
export type N8nDeps = { config: Config; ledger: Pick<Ledger, 'sql'>; log: Logger; secretBox: SecretBox; jobs: JobRunner };

/** Registers the 'n8n-discovery' job where jobs run. */
export function registerN8n(services: N8nDeps): void {
  services.jobs.register('n8n-discovery', async (p) =>
    discoverN8nWorkflows(
      { sql: services.ledger.sql, config: services.config, secrets: workflowSecretsOf(services), log: services.log.child({ job: 'n8n-discovery' }) },
      { organizationId: p.organizationId },
    ),
  );
}

/** What signs this process's workflows: WEBHOOK_SECRET, or (unset) a secret of each one's own. */
export function workflowSecretsOf(services: Pick<N8nDeps, 'config' | 'secretBox'>): WorkflowSecrets {
  return createWorkflowSecrets(() => services.secretBox, services.config.keys.webhookSecret);
}

/** At start, before any delivery: without WEBHOOK_SECRET, no workflow is left without a secret. */
export async function signN8nWorkflows(services: Pick<N8nDeps, 'config' | 'secretBox' | 'ledger' | 'log'>): Promise<void> {
  await signUnsignedWorkflows(services.ledger.sql, workflowSecretsOf(services), services.log.child({ component: 'n8n' }));
}

/** Schedules periodic discovery where jobs run, when N8N_DISCOVERY_INTERVAL_MS and N8N_API_URL are set. */
export async function scheduleN8nDiscovery(services: Pick<N8nDeps, 'config' | 'jobs'>): Promise<void> {
  const { n8n } = services.config;
  // Off: remove a schedule an earlier start left (with Redis it outlives processes).
  if (n8n.discoveryIntervalMs <= 0 || !n8n.apiUrl) return services.jobs.unschedule('n8n-discovery');
  await services.jobs.enqueue(
    'n8n-discovery',
    { organizationId: n8n.discoveryOrganizationId ?? DEFAULT_ORGANIZATION_ID },
    { repeatEveryMs: n8n.discoveryIntervalMs },
  );
}

/**
 * n8n in /health: with N8N_API_URL, 'reachable' when its API answers (with N8N_API_KEY, accepting the
 * key), 'unhealthy' when it refuses the key, 'unreachable' otherwise. Without it the core's answer
 * stands: 'configured' (N8N_WEBHOOK_URL only) or 'not_configured'. One per process: its answer is
 * kept for HEALTH_CACHE_MS.
 */
export function n8nHealthCheck(n8n: Config['n8n']): () => Promise<{ n8n?: 'reachable' | 'unreachable' | 'unhealthy' }> {
  let probe: { at: number; state: Promise<'reachable' | 'unreachable' | 'unhealthy'> } | null = null;
  return async () => {
    const { apiUrl, apiKey, apiTimeoutMs } = n8n;
    if (!apiUrl) return {};
    if (!probe || Date.now() - probe.at > HEALTH_CACHE_MS) {
      probe = { at: Date.now(), state: createN8nApi({ apiUrl, apiKey, timeoutMs: Math.min(apiTimeoutMs, HEALTH_TIMEOUT_MS) }).probe() };
    }
    return { n8n: await probe.state };
  };
}
