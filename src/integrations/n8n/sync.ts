/**
 * POST /n8n/sync, as in the seed: `{sync_type: "user-registration", data: {...}}` sends `data` to the
 * workflow whose webhook path is `sync_type`. Through the ledger, so it is logged and retried like any
 * delivery: the event (type `n8n.sync`, source `n8n`, record_id = the sync_type) is addressed to that one
 * workflow (ledger/n8n-workflows.ts: insertDirectedEvent). The caller then waits a little
 * (N8N_SYNC_WAIT_MS, or `wait_ms`) for the first outcome, woken by the worker's live updates.
 */
import type { Ledger } from '../../ledger/connection.ts';
import type { LiveBus } from '../../coordination/live-bus.ts';
import type { DataProtection } from '../../protection/data-protection.ts';
import { findN8nWorkflowsByPath, insertDirectedEvent, listN8nWorkflowPaths, n8nWorkflowActive } from '../../ledger/n8n-workflows.ts';
import { getEventAttempts, getEventDispatches, PRIORITY, type DispatchState } from '../../ledger/events.ts';
import { ConflictError, NotFoundError } from '../../errors/errors.ts';
import { dataUserId } from '../../ingest/ingest-service.ts';

export const SYNC_EVENT_TYPE = 'n8n.sync';
const POLL_MAX_INTERVAL_MS = 250;

export type SyncRequest = { organizationId: string; syncType: string; data: Record<string, unknown>; idempotencyKey?: string | undefined; waitMs: number };

export type SyncResult = {
  event_id: string;
  sync_type: string;
  duplicate: boolean;
  workflow: { id: string; workflow_id: string; name: string; url: string | null };
  /** delivered / failed: final. pending: not attempted yet; retrying: an attempt failed, another is scheduled. */
  status: 'delivered' | 'failed' | 'pending' | 'retrying' | 'paused';
  /** The last attempt, once there is one. */
  delivery: {
    attempts: number;
    status_code: number | null;
    error: string | null;
    response_body: string | null;
    duration_ms: number | null;
    next_attempt_at: Date | null;
  } | null;
  status_url: string;
};

/** What a sync uses: the ledger, sealing of its data, and the live updates that end its wait. */
export type SyncDeps = { ledger: Pick<Ledger, 'sql'>; dataProtection: DataProtection; liveBus: LiveBus };

export async function syncToWorkflow(services: SyncDeps, r: SyncRequest): Promise<SyncResult> {
  const sql = services.ledger.sql;
  // Checked first: bad input is refused whatever the sync_type finds.
  const userId = dataUserId(r.data);
  const [workflow] = await findN8nWorkflowsByPath(sql, r.organizationId, r.syncType);
  if (!workflow) {
    const known = await listN8nWorkflowPaths(sql, r.organizationId);
    throw new NotFoundError('n8n sync_type', r.syncType, { known_sync_types: known });
  }
  if (!n8nWorkflowActive(workflow) || !workflow.webhook_endpoint_id) {
    throw new ConflictError(
      `n8n workflow ${workflow.workflow_id} ("${workflow.name}") for sync_type ${r.syncType} is inactive${workflow.disabled_reason ? `: ${workflow.disabled_reason}` : ''}`,
    );
  }
  const event = await insertDirectedEvent(sql, {
    organizationId: r.organizationId,
    endpointId: workflow.webhook_endpoint_id,
    eventType: SYNC_EVENT_TYPE,
    recordId: r.syncType,
    userId,
    dataJson: services.dataProtection.sealData(r.data),
    // Someone is waiting for the answer.
    priority: PRIORITY.high,
    idempotencyKey: r.idempotencyKey ?? null,
  });
  const dispatch = await awaitOutcome(services, event.id, r.waitMs);
  const lastRow = dispatch && dispatch.attempts > 0 ? (await getEventAttempts(sql, event.id)).at(-1) : undefined;
  const last = lastRow && services.dataProtection.openAttempt(lastRow);
  return {
    event_id: event.id,
    sync_type: r.syncType,
    duplicate: event.duplicate,
    workflow: { id: workflow.id, workflow_id: workflow.workflow_id, name: workflow.name, url: workflow.delivery_url },
    status: statusOf(dispatch),
    delivery:
      dispatch && dispatch.attempts > 0
        ? {
            attempts: dispatch.attempts,
            status_code: dispatch.last_status_code,
            error: dispatch.last_error,
            response_body: last?.response_body ?? null,
            duration_ms: last?.delivery_duration_ms ?? null,
            next_attempt_at: dispatch.status === 'pending' ? dispatch.next_attempt_at : null,
          }
        : null,
    status_url: `/api/webhooks/events/${event.id}/status`,
  };
}

function statusOf(d: DispatchState | undefined): SyncResult['status'] {
  if (!d) return 'pending';
  if (d.status === 'succeeded') return 'delivered';
  if (d.status === 'failed' || d.status === 'cancelled') return 'failed';
  if (d.status === 'paused') return 'paused';
  return d.attempts > 0 && d.last_error ? 'retrying' : 'pending';
}

/** The event's one dispatch once it succeeded or failed for good, or as it is when `waitMs` runs out. */
async function awaitOutcome(services: SyncDeps, eventId: string, waitMs: number): Promise<DispatchState | undefined> {
  const deadline = Date.now() + waitMs;
  let wake: (() => void) | null = null;
  // Recorded outcomes wake the wait at once; the poll is the fallback (and covers a missed message).
  const unsubscribe = services.liveBus.subscribe((m) => {
    if (m.type === 'deliveries.recorded') wake?.();
  });
  try {
    let interval = 20;
    for (;;) {
      const [d] = await getEventDispatches(services.ledger.sql, eventId);
      const final = d?.status === 'succeeded' || d?.status === 'failed' || d?.status === 'cancelled';
      const left = deadline - Date.now();
      if (final || left <= 0) return d;
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, Math.min(interval, left));
        wake = () => {
          clearTimeout(t);
          resolve();
        };
      });
      wake = null;
      interval = Math.min(interval * 2, POLL_MAX_INTERVAL_MS);
    }
  } finally {
    unsubscribe();
  }
}
