/**
 * An endpoint's delivery settings as the API takes them (README, "Delivery settings per endpoint"):
 * static headers sent with each delivery, and overrides of the timeout and of the retry schedule. An
 * override stays within the service's own settings (WEBHOOK_TIMEOUT_MS, WEBHOOK_MAX_RETRIES, …): an
 * endpoint's owner may ask for less patience, never for more of the workers' time than the operator
 * gives any endpoint. Every refusal is an InvalidDeliverySettingError (422) naming the field.
 */
import type { RetryPolicy } from '../config/config.ts';
import type { EndpointDeliverySettings, SealedHeaders } from '../ledger/endpoints.ts';
import { isReservedHeader } from '../delivery/transformation/contract.ts';
import { InvalidDeliverySettingError } from '../errors/errors.ts';

export type DeliverySettingFields = {
  headers?: Record<string, string> | null;
  timeout_ms?: number | null;
  max_retries?: number | null;
  retry_base_delay_ms?: number | null;
};

/** The fields' JSON schemas (types only: the bounds depend on the configuration, and are checked below as 422s). */
export const deliverySettingSchemas = {
  headers: { type: ['object', 'null'], additionalProperties: { type: 'string' } },
  timeout_ms: { type: ['integer', 'null'] },
  max_retries: { type: ['integer', 'null'] },
  retry_base_delay_ms: { type: ['integer', 'null'] },
} as const;

const STATIC_HEADER_LIMITS = { count: 20, nameChars: 256, valueChars: 4096, totalChars: 16_384 } as const;
/** Below a second, a deadline or a first retry only measures the network, or hammers a receiver that is down. */
const MIN_TIMEOUT_MS = 1_000;
const MIN_RETRY_BASE_DELAY_MS = 1_000;

/** Headers Carteiro sets on every request besides those a transformation may not set either. */
const SET_BY_CARTEIRO = new Set(['traceparent', 'tracestate']);
const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
/** What an HTTP field value may hold (RFC 9110 field-content, as Node and undici check it): no CR, LF, NUL or other controls. */
const INVALID_VALUE_CHAR = /[^\t\x20-\x7e\x80-\xff]/;

/** What the service allows an override to be, from its configuration (computed once). */
export type DeliverySettingBounds = {
  timeoutMs: { min: number; max: number };
  maxRetries: number;
  retryBaseDelayMs: { min: number; max: number };
};

export function deliverySettingBounds(retry: RetryPolicy): DeliverySettingBounds {
  return {
    // A service configured below the floor (tests do) keeps its own setting as the floor.
    timeoutMs: { min: Math.min(MIN_TIMEOUT_MS, retry.timeoutMs), max: retry.timeoutMs },
    maxRetries: retry.maxRetries,
    retryBaseDelayMs: { min: Math.min(MIN_RETRY_BASE_DELAY_MS, retry.baseDelayMs), max: Math.max(retry.maxDelayMs, retry.baseDelayMs) },
  };
}

/**
 * The columns of the settings present in `b` (absent: unchanged; null: the service's again), every
 * one checked before any is returned. Header names are stored in lower case, values sealed by `seal`.
 */
export function deliverySettingColumns(
  b: DeliverySettingFields,
  bounds: DeliverySettingBounds,
  seal: (plain: string) => string,
): Partial<EndpointDeliverySettings> {
  const columns: Partial<EndpointDeliverySettings> = {};
  if (b.timeout_ms !== undefined) {
    columns.timeout_ms = within('timeout_ms', b.timeout_ms, bounds.timeoutMs.min, bounds.timeoutMs.max, 'WEBHOOK_TIMEOUT_MS');
  }
  if (b.max_retries !== undefined) columns.max_retries = within('max_retries', b.max_retries, 0, bounds.maxRetries, 'WEBHOOK_MAX_RETRIES');
  if (b.retry_base_delay_ms !== undefined) {
    const { min, max } = bounds.retryBaseDelayMs;
    columns.retry_base_delay_ms = within('retry_base_delay_ms', b.retry_base_delay_ms, min, max, 'WEBHOOK_RETRY_MAX_DELAY_MS');
  }
  if (b.headers !== undefined) {
    const headers = checkStaticHeaders(b.headers);
    columns.headers = headers && sealValues(headers, seal);
  }
  return columns;
}

function within(field: string, value: number | null, min: number, max: number, setting: string): number | null {
  if (value === null) return null;
  if (!Number.isInteger(value) || value < min || value > max) {
    throw new InvalidDeliverySettingError(
      field,
      `must be an integer from ${min} to ${max} (this service's bounds, from ${setting}), or null for the service's own`,
    );
  }
  return value;
}

/** The headers with lower-case names, or null for none; throws on the first one Carteiro refuses. */
function checkStaticHeaders(given: Record<string, string> | null): Record<string, string> | null {
  if (given === null) return null;
  const entries = Object.entries(given);
  if (entries.length === 0) return null;
  if (entries.length > STATIC_HEADER_LIMITS.count) {
    throw new InvalidDeliverySettingError('headers', `${entries.length} headers; at most ${STATIC_HEADER_LIMITS.count}`);
  }
  const headers: Record<string, string> = {};
  let total = 0;
  for (const [name, value] of entries) {
    // The field as the client wrote it; never the value, which may be a credential.
    const field = `headers.${name.slice(0, 100)}`;
    if (!TOKEN.test(name) || name.length > STATIC_HEADER_LIMITS.nameChars) {
      throw new InvalidDeliverySettingError(field, `is not a header name (letters, digits and !#$%&'*+-.^_\`|~, up to ${STATIC_HEADER_LIMITS.nameChars})`);
    }
    const lower = name.toLowerCase();
    if (isReservedHeader(lower) || SET_BY_CARTEIRO.has(lower)) {
      throw new InvalidDeliverySettingError(
        field,
        'is set by Carteiro (signatures, webhook-*, content-type, user-agent, traceparent) or belongs to the connection (host, content-length, transfer-encoding, connection…), and cannot be set',
      );
    }
    if (typeof value !== 'string') throw new InvalidDeliverySettingError(field, 'must be a string');
    if (INVALID_VALUE_CHAR.test(value))
      throw new InvalidDeliverySettingError(field, 'holds a line break, NUL or other control character, or a character outside Latin-1');
    if (value.length > STATIC_HEADER_LIMITS.valueChars)
      throw new InvalidDeliverySettingError(field, `is longer than ${STATIC_HEADER_LIMITS.valueChars} characters`);
    if (lower in headers) throw new InvalidDeliverySettingError(field, 'is given twice (header names are case-insensitive)');
    total += name.length + value.length;
    if (total > STATIC_HEADER_LIMITS.totalChars)
      throw new InvalidDeliverySettingError('headers', `more than ${STATIC_HEADER_LIMITS.totalChars} characters of names and values in all`);
    headers[lower] = value;
  }
  return headers;
}

function sealValues(headers: Record<string, string>, seal: (plain: string) => string): SealedHeaders {
  const sealed: SealedHeaders = {};
  for (const [name, value] of Object.entries(headers)) sealed[name] = seal(value);
  return sealed;
}

/**
 * The headers as the API shows them to the endpoint's owner: values opened (the owner set them, and
 * needs to see what is sent, as Svix and Convoy show theirs). A value whose key has left the keyring
 * shows as null rather than failing the whole answer.
 */
export function openStaticHeaders(sealed: SealedHeaders | null, open: (ciphertext: string) => string): Record<string, string | null> | null {
  if (!sealed) return null;
  const shown: Record<string, string | null> = {};
  for (const [name, value] of Object.entries(sealed)) {
    try {
      shown[name] = open(value);
    } catch {
      shown[name] = null;
    }
  }
  return shown;
}
