/**
 * How ledger rows look in API responses. Secrets and ciphertext never leave through here; an
 * endpoint's static header values are opened for its owner (api/endpoint-delivery-settings.ts).
 */
import type { EventDetail, DispatchState } from '../ledger/events.ts';
import type { EndpointRow } from '../ledger/endpoints.ts';
import { openStaticHeaders } from './endpoint-delivery-settings.ts';

export function presentEvent(e: EventDetail) {
  return {
    id: e.id,
    organization_id: e.organization_id,
    event_type: e.event_type,
    event_source: e.event_source,
    table_name: e.table_name,
    record_id: e.record_id,
    user_id: e.user_id,
    data: e.data,
    priority: e.priority > 0 ? 'high' : 'normal',
    status: e.status,
    retry_count: e.retry_count,
    error_message: e.error_message,
    idempotency_key: e.idempotency_key,
    created_at: e.created_at,
    processed_at: e.processed_at,
  };
}

/** The live status: derived from the dispatches (the truth), matching what the worker writes to the event row. */
export function liveStatus(event: EventDetail, dispatches: DispatchState[]): string {
  if (dispatches.length === 0) return event.status;
  if (dispatches.some((d) => d.status === 'pending' || d.status === 'in_flight' || d.status === 'paused')) {
    return dispatches.some((d) => d.attempts > 0 || d.status === 'in_flight') ? 'processing' : 'pending';
  }
  return dispatches.some((d) => d.status === 'failed') ? 'failed' : 'completed';
}

export function presentEventStatus(event: EventDetail, dispatches: DispatchState[]) {
  // The event row and its dispatches are read by two statements; figures that can change between them
  // come from the dispatches so the answer is consistent with its own `deliveries`.
  const status = liveStatus(event, dispatches);
  const failing = dispatches.find((d) => d.status === 'failed' || (d.status === 'pending' && d.last_error));
  return {
    event_id: event.id,
    event_type: event.event_type,
    status,
    retry_count: dispatches.length ? Math.max(0, ...dispatches.map((d) => d.attempts - 1)) : event.retry_count,
    error_message: dispatches.length ? (failing?.last_error ?? null) : event.error_message,
    created_at: event.created_at,
    processed_at:
      status === 'completed' || status === 'failed'
        ? (event.processed_at ?? dispatches.reduce<Date | null>((at, d) => (d.completed_at && (!at || d.completed_at > at) ? d.completed_at : at), null))
        : null,
    deliveries: dispatches.map((d) => ({
      endpoint_id: d.webhook_endpoint_id,
      endpoint_name: d.endpoint_name,
      destination: d.endpoint_kind,
      status: d.status,
      attempts: d.attempts,
      last_status_code: d.last_status_code,
      last_error: d.last_error,
      next_attempt_at: d.status === 'pending' ? d.next_attempt_at : null,
      completed_at: d.completed_at,
    })),
  };
}

/** The endpoint presenter, given what opens sealed values (the secret box's open). */
export function endpointPresenter(open: (ciphertext: string) => string) {
  return (e: EndpointRow) => presentEndpoint(e, open);
}

function presentEndpoint(e: EndpointRow, open: (ciphertext: string) => string) {
  return {
    id: e.id,
    organization_id: e.organization_id,
    user_id: e.user_id,
    name: e.name,
    url: e.url,
    events: e.events,
    is_active: e.is_active,
    disabled_reason: e.disabled_reason,
    description: e.description,
    metadata: e.metadata,
    rate_limit_per_second: e.rate_limit_per_second,
    include_fields: e.include_fields ?? null,
    filter: e.filter ?? null,
    transformation: e.transformation ?? null,
    template: e.template ?? null,
    fifo: e.fifo ?? false,
    fifo_on_exhausted: e.fifo_on_exhausted ?? 'hold',
    // Batching (docs/batching.md): null batch_max_events is one event per request.
    batch_max_events: e.batch_max_events ?? null,
    batch_max_wait_ms: e.batch_max_wait_ms ?? null,
    batch_group_by_type: e.batch_group_by_type ?? false,
    // Delivery settings: null is the service's own (migration 0027).
    headers: openStaticHeaders(e.headers ?? null, open),
    timeout_ms: e.timeout_ms ?? null,
    max_retries: e.max_retries ?? null,
    retry_base_delay_ms: e.retry_base_delay_ms ?? null,
    success_count: Number(e.success_count),
    failure_count: Number(e.failure_count),
    consecutive_failures: e.consecutive_failures ?? 0,
    failing_since: e.failing_since ?? null,
    max_in_flight: e.max_in_flight ?? null,
    failed_attempts_in_row: e.failed_attempts_in_row ?? 0,
    // 'failing': past the warning threshold (an `endpoint.failing` was sent); 'disabled': not delivered
    // to, with next_probe_at when the circuit breaker will try it again by itself.
    health: !e.is_active ? 'disabled' : e.failing_notified_at ? 'failing' : 'healthy',
    next_probe_at: e.is_active ? null : (e.probe_at ?? null),
    previous_secret_expires_at:
      e.previous_secret && e.previous_secret_expires_at && e.previous_secret_expires_at > new Date() ? e.previous_secret_expires_at : null,
    created_at: e.created_at,
    updated_at: e.updated_at,
  };
}
