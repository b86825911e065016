/**
 * An endpoint's writable fields as the API takes them, checked and turned into ledger columns: one
 * place for the organization's routes and the portal's, so a field added to one is checked in both
 * (the portal once took fields it then ignored, or stored unchecked).
 */
import type { NewEndpoint, EndpointChanges, EndpointDeliverySettings } from '../ledger/endpoints.ts';
import { isValidEventFilter } from '../catalog/patterns.ts';
import { contentFilterColumns } from '../catalog/content-filter.ts';
import { ValidationError } from '../errors/errors.ts';
import { validateIncludeFields, type IncludeFields } from '../security/minimal-payload.ts';
import type { Transformer } from '../delivery/transformation/transformer.ts';
import { transformationColumns, type TransformationFields } from './endpoint-transformation.ts';
import { deliverySettingColumns, type DeliverySettingBounds, type DeliverySettingFields } from './endpoint-delivery-settings.ts';

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
} & TransformationFields & DeliverySettingFields;

export type EndpointPatch = Omit<EndpointChanges, 'filter_jsonpath' | 'filter_vars' | keyof EndpointDeliverySettings> & TransformationFields & DeliverySettingFields;

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

export function checkFilters(events: string[] | undefined): void {
  const bad = events?.find((e) => !isValidEventFilter(e));
  if (bad !== undefined) {
    throw new ValidationError(`events: "${bad}" is not an event type or wildcard (e.g. user.registered, integration.*, *)`, { field: 'events' });
  }
}

/** A new endpoint's columns from a create body, every field checked (nothing is written before). */
export async function newEndpointColumns(b: EndpointBody, deps: EndpointInputDeps): Promise<Omit<NewEndpoint, 'organizationId' | 'userId' | 'secretCiphertext' | 'kind'>> {
  checkFilters(b.events);
  validateIncludeFields(b.include_fields);
  const contentFilter = contentFilterColumns(b.filter, deps.piiFields);
  const deliverySettings = deliverySettingColumns(b, deps.deliveryBounds, deps.sealHeaderValue);
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
    deliverySettings,
  };
}

/** The changes of an update body, every field checked (code compiled) before anything is written. */
export async function endpointChanges(body: EndpointPatch, deps: EndpointInputDeps): Promise<EndpointChanges> {
  const { transformation, template, template_options, headers, timeout_ms, max_retries, retry_base_delay_ms, ...rest } = body;
  checkFilters(rest.events);
  validateIncludeFields(rest.include_fields);
  const settings = deliverySettingColumns({ headers, timeout_ms, max_retries, retry_base_delay_ms }, deps.deliveryBounds, deps.sealHeaderValue);
  const changes: EndpointChanges = { ...rest, ...contentFilterColumns(rest.filter, deps.piiFields), ...settings };
  if (rest.url) await deps.checkDestination(rest.url);
  Object.assign(changes, await transformationColumns({ transformation, template, template_options }, deps.transformer));
  return changes;
}
