/**
 * An endpoint's writable fields as the API takes them, checked and turned into ledger columns: one
 * place for the organization's routes and the portal's, so a field added to one is checked in both
 * (the portal once took fields it then ignored, or stored unchecked).
 */
import type { NewEndpoint, EndpointChanges, EndpointDeliverySettings, EndpointRow } from '../ledger/endpoints.ts';
import { isValidEventFilter } from '../catalog/patterns.ts';
import { contentFilterColumns } from '../catalog/content-filter.ts';
import { InvalidBatchingError, ValidationError } from '../errors/errors.ts';
import { validateIncludeFields, type IncludeFields } from '../protection/minimal-payload.ts';
import type { Transformer } from '../delivery/transformation/transformer.ts';
import { transformationColumns, type TransformationFields } from './endpoint-transformation.ts';
import { deliverySettingBounds, deliverySettingColumns, type DeliverySettingBounds, type DeliverySettingFields } from './endpoint-delivery-settings.ts';

export type EndpointBody = {
  name: string;
  url: string;
  events?: string[];
  description?: string | null;
  metadata?: Record<string, unknown>;
  rate_limit_per_second?: number | null;
  max_in_flight?: number | null;
  user_id?: string | null;
  is_active?: boolean;
  include_fields?: IncludeFields | null;
  filter?: Record<string, unknown> | null;
  fifo?: boolean;
  fifo_on_exhausted?: 'hold' | 'skip';
} & BatchingFields &
  TransformationFields &
  DeliverySettingFields;

/** Batching (docs/batching.md): at most this many events per POST (null or 1: one event per POST). */
export type BatchingFields = {
  batch_max_events?: number | null;
  batch_max_wait_ms?: number | null;
  batch_group_by_type?: boolean;
};

export const BATCH_MAX_EVENTS = 1000;
export const BATCH_MAX_WAIT_MS = 3_600_000;
/** How long a batch waits to fill when the endpoint does not say. */
export const BATCH_DEFAULT_WAIT_MS = 1000;

/** The JSON schemas of the batching fields (the bounds are checked in code, for a message naming the field). */
export const batchingFieldSchemas = {
  batch_max_events: { type: ['integer', 'null'] },
  batch_max_wait_ms: { type: ['integer', 'null'] },
  batch_group_by_type: { type: 'boolean' },
} as const;

export type EndpointPatch = Omit<EndpointChanges, 'filter_jsonpath' | 'filter_vars' | keyof EndpointDeliverySettings> &
  TransformationFields &
  DeliverySettingFields;

/** What checking an endpoint's fields needs. */
export type EndpointInputDeps = {
  piiFields: ReadonlySet<string>;
  checkDestination: (url: string, field?: string) => Promise<void>;
  transformer: Transformer;
  /** What the service allows delivery settings to be (from its configuration). */
  deliveryBounds: DeliverySettingBounds;
  /** Seals a static header's value for the ledger (the secret box). */
  sealHeaderValue: (plain: string) => string;
};

/** The checks' dependencies from what both route sets (organization and portal) hold. */
export function endpointInputDeps(s: {
  dataProtection: { piiFields: ReadonlySet<string> };
  checkDestination: EndpointInputDeps['checkDestination'];
  transformer: Transformer;
  config: { delivery: { retry: Parameters<typeof deliverySettingBounds>[0] } };
  secretBox: { seal(plain: string): string };
}): EndpointInputDeps {
  return {
    piiFields: s.dataProtection.piiFields,
    checkDestination: s.checkDestination,
    transformer: s.transformer,
    deliveryBounds: deliverySettingBounds(s.config.delivery.retry),
    sealHeaderValue: (plain) => s.secretBox.seal(plain),
  };
}

export function checkFilters(events: string[] | undefined): void {
  const bad = events?.find((e) => !isValidEventFilter(e));
  if (bad !== undefined) {
    throw new ValidationError(`events: "${bad}" is not an event type or wildcard (e.g. user.registered, integration.*, *)`, { field: 'events' });
  }
}

/** A new endpoint's columns from a create body, every field checked (nothing is written before). */
export async function newEndpointColumns(
  b: EndpointBody,
  deps: EndpointInputDeps,
): Promise<Omit<NewEndpoint, 'organizationId' | 'userId' | 'secretCiphertext' | 'kind'>> {
  checkFilters(b.events);
  validateIncludeFields(b.include_fields);
  const contentFilter = contentFilterColumns(b.filter, deps.piiFields);
  const deliverySettings = deliverySettingColumns(b, deps.deliveryBounds, deps.sealHeaderValue);
  const batching = batchingColumns(b, null);
  await deps.checkDestination(b.url);
  const code = await transformationColumns(b, deps.transformer);
  return {
    name: b.name,
    url: b.url,
    events: b.events ?? ['*'],
    description: b.description ?? null,
    metadata: b.metadata ?? {},
    rateLimitPerSecond: b.rate_limit_per_second ?? null,
    isActive: b.is_active ?? true,
    includeFields: b.include_fields ?? null,
    maxInFlight: b.max_in_flight ?? null,
    contentFilter,
    transformation: code.transformation ?? null,
    template: code.template ?? null,
    fifo: b.fifo ?? false,
    fifoOnExhausted: b.fifo_on_exhausted ?? 'hold',
    batching,
    deliverySettings,
  };
}

/**
 * The changes of an update body, every field checked (code compiled) before anything is written.
 * `current` is the endpoint as it is: batching is checked against what the endpoint will be.
 */
export async function endpointChanges(body: EndpointPatch, deps: EndpointInputDeps, current: EndpointRow): Promise<EndpointChanges> {
  const {
    transformation,
    template,
    template_options,
    headers,
    timeout_ms,
    max_retries,
    retry_base_delay_ms,
    batch_max_events,
    batch_max_wait_ms,
    batch_group_by_type,
    ...rest
  } = body;
  checkFilters(rest.events);
  validateIncludeFields(rest.include_fields);
  const settings = deliverySettingColumns({ headers, timeout_ms, max_retries, retry_base_delay_ms }, deps.deliveryBounds, deps.sealHeaderValue);
  const batching = batchingColumns({ ...body, batch_max_events, batch_max_wait_ms, batch_group_by_type }, current);
  const changes: EndpointChanges = { ...rest, ...contentFilterColumns(rest.filter, deps.piiFields), ...settings, ...batching };
  if (rest.url) await deps.checkDestination(rest.url);
  Object.assign(changes, await transformationColumns({ transformation, template, template_options }, deps.transformer));
  return changes;
}

type BatchingColumns = Partial<{ batch_max_events: number | null; batch_max_wait_ms: number | null; batch_group_by_type: boolean }>;

/**
 * The batching columns of a create (`current` null) or update body, checked against what the endpoint
 * will be (docs/batching.md): a batching endpoint is neither FIFO nor transformed (each would need a
 * meaning per batch), so the request that would make one both is refused, naming its own field.
 */
export function batchingColumns(
  b: BatchingFields & { fifo?: boolean; transformation?: string | null; template?: string | null },
  current: EndpointRow | null,
): BatchingColumns {
  const columns: BatchingColumns = {};
  if (b.batch_max_events !== undefined) {
    const n = b.batch_max_events;
    if (n !== null && (!Number.isInteger(n) || n < 1 || n > BATCH_MAX_EVENTS)) {
      throw new InvalidBatchingError('batch_max_events', `must be an integer from 1 to ${BATCH_MAX_EVENTS} (1 or null: one event per request)`);
    }
    columns.batch_max_events = n === null || n === 1 ? null : n;
  }
  if (b.batch_max_wait_ms !== undefined) {
    const w = b.batch_max_wait_ms;
    if (w !== null && (!Number.isInteger(w) || w < 0 || w > BATCH_MAX_WAIT_MS)) {
      throw new InvalidBatchingError(
        'batch_max_wait_ms',
        `must be an integer from 0 to ${BATCH_MAX_WAIT_MS} (milliseconds), or null for ${BATCH_DEFAULT_WAIT_MS}`,
      );
    }
    columns.batch_max_wait_ms = w;
  }
  if (b.batch_group_by_type !== undefined) columns.batch_group_by_type = b.batch_group_by_type;
  const batching = (columns.batch_max_events !== undefined ? columns.batch_max_events : (current?.batch_max_events ?? null)) !== null;
  if (!batching) return columns;
  // Batching switched on without a wait: the default one, stored, so the endpoint shows what it does.
  if ((columns.batch_max_wait_ms !== undefined ? columns.batch_max_wait_ms : (current?.batch_max_wait_ms ?? null)) === null)
    columns.batch_max_wait_ms = BATCH_DEFAULT_WAIT_MS;
  const asked = columns.batch_max_events !== undefined;
  const fifo = b.fifo ?? current?.fifo ?? false;
  if (fifo) {
    const field = asked ? 'batch_max_events' : 'fifo';
    throw new InvalidBatchingError(field, 'an endpoint cannot both batch and deliver in order (fifo); turn one off');
  }
  const code = b.transformation !== undefined || b.template !== undefined ? (b.transformation ?? b.template ?? null) : (current?.transformation ?? null);
  if (code) {
    const field = asked ? 'batch_max_events' : b.transformation !== undefined ? 'transformation' : 'template';
    throw new InvalidBatchingError(
      field,
      'a batching endpoint cannot have a transformation (it runs per event); remove the transformation or turn batching off',
    );
  }
  return columns;
}
