/**
 * Endpoint health: the circuit breaker's thresholds live in config.circuitBreaker and are applied by
 * the worker's outcome batches (ledger/outcomes.ts → ledger/circuit-breaker.ts). This module sets
 * up where the resulting `endpoint.disabled` events go: the operations endpoint, an ordinary
 * endpoint row (so the event is signed, retried and logged like any webhook) that Carteiro keeps
 * pointed at CARTEIRO_OPERATIONS_WEBHOOK_URL.
 */
import type { Services } from './services.ts';
import { upsertOperationsEndpoint } from '../ledger/circuit-breaker.ts';

/**
 * Creates or updates the operations endpoint from config. Without CARTEIRO_OPERATIONS_WEBHOOK_URL an
 * existing one is left as it is (an operator may disable or delete it through the API).
 * Signed with CARTEIRO_OPERATIONS_WEBHOOK_SECRET, or WEBHOOK_SECRET when that is not set.
 */
export async function ensureOperationsEndpoint(services: Services): Promise<string | null> {
  const { config, ledger, secretBox, log } = services;
  const url = config.operations.webhookUrl;
  if (!url) return null;
  try {
    await services.checkDestination(url);
  } catch (err) {
    // Not fatal: the operator configured it; deliveries will show why they fail.
    log.warn(
      { err: (err as Error).message },
      'CARTEIRO_OPERATIONS_WEBHOOK_URL is not a destination webhooks may be sent to (see CARTEIRO_ALLOW_PRIVATE_NETWORKS)',
    );
  }
  const secret = config.operations.webhookSecret;
  const row = await upsertOperationsEndpoint(ledger.sql, { url, secretCiphertext: secret ? secretBox.seal(secret) : null });
  return row.id;
}
