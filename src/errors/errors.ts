/**
 * Every error a client can see, one class each, with a stable code and an HTTP status.
 * The API's error handler (api/error-handler.ts) is the only place that turns these into responses.
 */
export class CarteiroError extends Error {
  readonly code: string;
  readonly statusCode: number;
  readonly details: Record<string, unknown> | undefined;
  constructor(code: string, statusCode: number, message: string, details?: Record<string, unknown>) {
    super(message);
    this.name = new.target.name;
    this.code = code;
    this.statusCode = statusCode;
    this.details = details;
  }
}

export class ValidationError extends CarteiroError {
  constructor(message: string, details?: Record<string, unknown>) {
    super('CARTEIRO_INVALID_INPUT', 400, message, details);
  }
}

/** Well-formed request whose data does not satisfy the event type's schema. */
export class SchemaViolationError extends CarteiroError {
  constructor(message: string, details?: Record<string, unknown>) {
    super('CARTEIRO_SCHEMA_VIOLATION', 422, message, details);
  }
}

/** An endpoint's content filter that Carteiro cannot apply: `field` is the part that is wrong (`filter.amount.gte`). */
export class InvalidFilterError extends CarteiroError {
  constructor(field: string, message: string) {
    super('CARTEIRO_INVALID_FILTER', 422, `${field}: ${message}`, { field });
  }
}

/**
 * An endpoint's delivery setting that Carteiro refuses: a static header it sets itself or that is not
 * a valid header, or a timeout or retry override outside the service's bounds. `field` is the part
 * that is wrong (`headers.X-Foo`, `timeout_ms`).
 */
export class InvalidDeliverySettingError extends CarteiroError {
  constructor(field: string, message: string) {
    super('CARTEIRO_INVALID_DELIVERY_SETTING', 422, `${field}: ${message}`, { field });
  }
}

/** A portal session's theme Carteiro will not apply: `field` is the part that is wrong (`theme.primary_color`). */
export class InvalidPortalThemeError extends CarteiroError {
  constructor(field: string, message: string) {
    super('CARTEIRO_INVALID_THEME', 422, `${field}: ${message}`, { field });
  }
}

/** An endpoint's batching fields (docs/batching.md): a bad value, or batching with what it cannot go with. */
export class InvalidBatchingError extends CarteiroError {
  constructor(field: string, message: string) {
    super('CARTEIRO_INVALID_BATCHING', 422, `${field}: ${message}`, { field });
  }
}

/**
 * An endpoint's transformation (or template) that cannot be used: it does not compile, defines no
 * `handler`, or its top level throws or runs past the limits. `field` is `transformation`, `template`
 * or `template_options.<name>`; `line` the line of the code the error points at, when known.
 */
export class InvalidTransformationError extends CarteiroError {
  constructor(field: string, message: string, line?: number | null) {
    super('CARTEIRO_INVALID_TRANSFORMATION', 422, `${field}: ${message}`, line ? { field, line } : { field });
  }
}

/** A preview whose transformation failed on the event: threw, ran past a limit, or returned what the contract refuses. */
export class TransformationFailedError extends CarteiroError {
  constructor(message: string, details: { kind: string; line?: number | null }) {
    super('CARTEIRO_TRANSFORMATION_FAILED', 422, `transformation: ${message}`, { field: 'transformation', ...details });
  }
}

/** Every transformation thread stayed busy past the wait limit: nothing was checked or changed; try again. */
export class TransformationBusyError extends CarteiroError {
  readonly retryAfterSeconds: number;
  constructor() {
    super('CARTEIRO_TRANSFORMATION_BUSY', 503, 'the transformation sandbox is busy; retry in a moment (nothing was changed)');
    this.retryAfterSeconds = 1;
  }
}

export class UnknownEventTypeError extends CarteiroError {
  constructor(eventType: string) {
    super('CARTEIRO_UNKNOWN_EVENT_TYPE', 422, `event_type "${eventType}" is not in the catalog`, { event_type: eventType });
  }
}

export class NotFoundError extends CarteiroError {
  constructor(what: string, id?: string, details?: Record<string, unknown>) {
    super('CARTEIRO_NOT_FOUND', 404, id ? `${what} ${id} not found` : `${what} not found`, details);
  }
}

export class ConflictError extends CarteiroError {
  constructor(message: string, details?: Record<string, unknown>) {
    super('CARTEIRO_CONFLICT', 409, message, details);
  }
}

export class UnauthorizedError extends CarteiroError {
  constructor(message = 'missing or invalid API key: send Authorization: Bearer <key>') {
    super('CARTEIRO_UNAUTHORIZED', 401, message);
  }
}

export class ForbiddenError extends CarteiroError {
  constructor(message: string) {
    super('CARTEIRO_FORBIDDEN', 403, message);
  }
}

export class RateLimitedError extends CarteiroError {
  readonly retryAfterSeconds: number;
  constructor(retryAfterSeconds: number, reason = 'rate limit exceeded', details?: Record<string, unknown>) {
    super('CARTEIRO_RATE_LIMITED', 429, `${reason}; retry after ${retryAfterSeconds} s`, details);
    this.retryAfterSeconds = retryAfterSeconds;
  }
}

/** One user id's events over its ingress limit (docs/portal.md): names the user and the limit. */
export class UserRateLimitedError extends RateLimitedError {
  constructor(retryAfterSeconds: number, userId: string, eventsPerSecond: number, burst: number) {
    super(retryAfterSeconds, `user "${userId}" is over its limit of ${eventsPerSecond} events per second (burst ${burst} per 10 s)`, {
      limit: 'user_events_per_second',
      user_id: userId,
      events_per_second: eventsPerSecond,
      burst,
    });
  }
}

/** A quota that creating one more would exceed, e.g. the endpoints one user may own (docs/portal.md). */
export class QuotaExceededError extends CarteiroError {
  constructor(limit: string, value: number, message: string, details?: Record<string, unknown>) {
    super('CARTEIRO_QUOTA_EXCEEDED', 422, message, { limit, [limit]: value, ...details });
  }
}

/** The ledger cannot be reached: nothing was accepted, the client should try again. */
export class LedgerUnavailableError extends CarteiroError {
  readonly retryAfterSeconds: number;
  constructor(cause?: unknown) {
    super(
      'CARTEIRO_LEDGER_UNAVAILABLE',
      503,
      'the ledger (Postgres) did not answer in time; retry later (with the same Idempotency-Key a retry never stores an event twice)',
    );
    this.retryAfterSeconds = 2;
    this.cause = cause;
  }
}

/**
 * A request not answered within the commit deadline (every route has it; see api/answer-deadline.ts):
 * what it waits on, nearly always the ledger, is unavailable or stalled. The client should try again.
 */
export class AnswerDeadlineError extends CarteiroError {
  readonly retryAfterSeconds: number;
  constructor(deadlineMs: number) {
    super(
      'CARTEIRO_ANSWER_DEADLINE',
      503,
      `no answer within ${deadlineMs} ms: the ledger (Postgres) is unavailable or slow; retry later (with the same Idempotency-Key a retry never stores an event twice)`,
    );
    this.retryAfterSeconds = 2;
  }
}

export class UnsafeDestinationError extends CarteiroError {
  /** `field`: the request field the URL came from (url, webhook_url, base_url), where there is one. */
  constructor(message: string, field?: string) {
    super('CARTEIRO_UNSAFE_DESTINATION', 422, message, field ? { field } : undefined);
  }
}

/** A route that exists but is switched off by configuration (the message says how to switch it on). */
export class FeatureDisabledError extends CarteiroError {
  constructor(message: string) {
    super('CARTEIRO_FEATURE_DISABLED', 404, message);
  }
}

/** A Supabase Database Webhook for a table (and operation) that no event type is mapped to. */
export class UnmappedTableError extends CarteiroError {
  constructor(table: string, operation: string, mapped: string[]) {
    super('CARTEIRO_UNMAPPED_TABLE', 422, `no event type is mapped to ${operation} on table "${table}"`, { table, operation, mapped });
  }
}

/** n8n's API (N8N_API_URL) could not be read: unreachable, timed out, refused the key, or answered nonsense. */
export class N8nApiError extends CarteiroError {
  constructor(message: string, details?: Record<string, unknown>) {
    super('CARTEIRO_N8N_API_ERROR', 502, message, details);
  }
}

/** A body over the configured limit (CARTEIRO_BODY_LIMIT_BYTES): the message states the limit. */
export class BodyTooLargeError extends CarteiroError {
  constructor(limitBytes: number) {
    super('CARTEIRO_BODY_TOO_LARGE', 413, `request body is too large: the limit is ${limitBytes} bytes`, { field: 'body', limit_bytes: limitBytes });
  }
}

/**
 * A number in a JSON body that would be stored altered: JSON numbers are read as doubles, so an
 * integer beyond 2^53 or a decimal with more digits than a double keeps would change silently.
 */
export class InexactNumberError extends CarteiroError {
  constructor(field: string, source: string) {
    const shown = source.length > 40 ? `${source.slice(0, 40)}…` : source;
    super(
      'CARTEIRO_INEXACT_NUMBER',
      422,
      `${field} is ${shown}, a number that cannot be stored exactly (integers must be within ±2^53, decimals within 15 significant digits); send it as a string`,
      { field },
    );
  }
}

/** A body in a media type the API has no parser for: it reads JSON. */
export class UnsupportedMediaTypeError extends CarteiroError {
  constructor(contentType: string | undefined) {
    const sent = contentType ? `"${contentType.slice(0, 100)}"` : 'missing';
    super('CARTEIRO_UNSUPPORTED_MEDIA_TYPE', 415, `Content-Type ${sent} is not supported: send application/json`, { field: 'headers.content-type' });
  }
}

/** A path parameter longer than the router accepts: refused before any route runs, so no schema names it. */
export class PathParamTooLongError extends CarteiroError {
  constructor(field: string, message: string) {
    super('CARTEIRO_PARAM_TOO_LONG', 414, message, { field });
  }
}
