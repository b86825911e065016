/**
 * The only way error text leaves the API. Carteiro's typed errors keep their status and code;
 * Fastify's own client errors (schema validation, malformed JSON, oversized bodies) become 4xx
 * with a message naming the field; anything unexpected is a 500 without internals, logged in full.
 */
import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify';
import { answerThenDrain } from './oversized-body.ts';
import {
  AnswerDeadlineError,
  BodyTooLargeError,
  CarteiroError,
  LedgerUnavailableError,
  PathParamTooLongError,
  RateLimitedError,
  TransformationBusyError,
  UnsupportedMediaTypeError,
  ValidationError,
} from '../errors/errors.ts';
import { isLedgerDown } from '../ledger/connection.ts';

export type ErrorBody = { statusCode: number; code: string; error: string; message: string; details?: Record<string, unknown> };

const PHRASES: Record<number, string> = {
  400: 'Bad Request',
  401: 'Unauthorized',
  403: 'Forbidden',
  404: 'Not Found',
  405: 'Method Not Allowed',
  409: 'Conflict',
  413: 'Payload Too Large',
  414: 'URI Too Long',
  415: 'Unsupported Media Type',
  422: 'Unprocessable Entity',
  429: 'Too Many Requests',
  431: 'Request Header Fields Too Large',
  500: 'Internal Server Error',
  503: 'Service Unavailable',
};

/**
 * Postgres class 22 (data exception: out-of-range date or number, NUL byte, bad encoding…), 54000
 * (program limit exceeded: a value too large for an index entry) and 54001 (nested too deeply). Every
 * query is parameterised, so these come from a value the client sent that got past validation: a 400,
 * not a 500. Logged at warn, in case one ever comes from our own SQL.
 */
export function isDataException(err: unknown): boolean {
  const e = err as { name?: string; code?: unknown } | null;
  return e?.name === 'PostgresError' && typeof e.code === 'string' && (e.code.startsWith('22') || e.code === '54000' || e.code === '54001');
}

/**
 * What a data exception's log line keeps: which check refused what kind of value, where. Not Postgres's
 * message, detail or context, which quote the value itself (`Token "ana@example.com" is invalid`):
 * a client's personal data or secret would land in the log, out of every erasure's reach.
 */
function refusalFacts(err: unknown): Record<string, unknown> {
  const e = err as Record<string, unknown>;
  const facts: Record<string, unknown> = {};
  for (const k of ['code', 'routine', 'schema_name', 'table_name', 'column_name', 'data_type', 'constraint_name']) if (e[k] !== undefined) facts[k] = e[k];
  return facts;
}

/** A Postgres error as logged: its message, code and stack, without the detail and context that quote row values. */
function withoutQuotedValues(err: unknown): unknown {
  const e = err as { name?: unknown; message?: unknown; stack?: unknown } | null;
  if (e?.name !== 'PostgresError') return err;
  return { type: 'PostgresError', message: e.message, stack: e.stack, ...refusalFacts(err) };
}

/** Fastify's body errors, which know no limit or media type, as Carteiro's that name them. */
function fromBodyError(err: unknown, request: FastifyRequest): unknown {
  const code = (err as { code?: unknown })?.code;
  if (code === 'FST_ERR_CTP_BODY_TOO_LARGE') return new BodyTooLargeError(request.routeOptions.bodyLimit);
  if (code === 'FST_ERR_CTP_INVALID_MEDIA_TYPE') return new UnsupportedMediaTypeError(request.headers['content-type']);
  return err;
}

/**
 * The router's refusals, raised before any route (and so any schema) runs; given to Fastify as
 * `frameworkErrors`. `routePaths` (the registered patterns, `/api/webhooks/endpoints/:id`) name the
 * parameter an over-long segment stands in.
 */
export function fromRouterError(err: FastifyError, url: string, routePaths: readonly string[], maxParamLength: number): unknown {
  const path = url.split('?')[0] ?? '';
  const shown = path.length > 200 ? `${path.slice(0, 200)}…` : path;
  if (err.code === 'FST_ERR_BAD_URL') {
    return new ValidationError(`the URL path ${shown} is not valid: check its percent-escapes (each %XX must be part of UTF-8)`, { field: 'url' });
  }
  if (err.code === 'FST_ERR_MAX_PARAM_LENGTH') {
    const field = paramAt(path, routePaths, maxParamLength);
    return new PathParamTooLongError(field, `${field} is longer than ${maxParamLength} characters (in ${shown})`);
  }
  return err;
}

/** `params.<name>` for the first segment of `path` longer than `max`, by the route pattern it matches; else `params`. */
function paramAt(path: string, routePaths: readonly string[], max: number): string {
  const segments = path.split('/');
  const at = segments.findIndex((s) => s.length > max);
  for (const route of routePaths) {
    const parts = route.split('/');
    if (parts.length !== segments.length || !parts.every((p, i) => p.startsWith(':') || p === segments[i])) continue;
    const name = parts[at];
    if (name?.startsWith(':')) return `params.${name.slice(1)}`;
  }
  return 'params';
}

export function toErrorBody(err: unknown): { body: ErrorBody; headers: Record<string, string> } {
  if (isLedgerDown(err)) err = new LedgerUnavailableError(err);
  if (isDataException(err)) err = new ValidationError('a value in the request is out of range or cannot be stored');
  if (err instanceof CarteiroError) {
    const headers: Record<string, string> = {};
    if (
      err instanceof RateLimitedError ||
      err instanceof LedgerUnavailableError ||
      err instanceof AnswerDeadlineError ||
      err instanceof TransformationBusyError
    )
      headers['retry-after'] = String(err.retryAfterSeconds);
    const body: ErrorBody = { statusCode: err.statusCode, code: err.code, error: PHRASES[err.statusCode] ?? 'Error', message: err.message };
    if (err.details) body.details = err.details;
    return { body, headers };
  }
  const fe = err as FastifyError & { validation?: { instancePath: string; params?: Record<string, unknown> }[]; validationContext?: string };
  if (fe?.validation) {
    const first = fe.validation[0];
    const missing = first?.params?.missingProperty as string | undefined;
    const extra = first?.params?.additionalProperty as string | undefined;
    const path = [fe.validationContext ?? 'body', ...(first?.instancePath ?? '').split('/').filter(Boolean)];
    if (missing) path.push(missing);
    if (extra) path.push(extra);
    const field = path.join('.');
    const message = extra ? `${field} is not an allowed field` : fe.message;
    return { body: { statusCode: 400, code: 'CARTEIRO_INVALID_INPUT', error: 'Bad Request', message, details: { field } }, headers: {} };
  }
  const status = typeof fe?.statusCode === 'number' && fe.statusCode >= 400 && fe.statusCode < 500 ? fe.statusCode : 500;
  if (status < 500) {
    return {
      body: { statusCode: status, code: fe.code ?? 'CARTEIRO_BAD_REQUEST', error: PHRASES[status] ?? 'Error', message: fe.message },
      headers: {},
    };
  }
  return { body: { statusCode: 500, code: 'CARTEIRO_INTERNAL', error: PHRASES[500] as string, message: 'internal error; see the server log' }, headers: {} };
}

/** Answers with the error envelope, and returns it (metrics count ingest refusals by its code). */
export function errorHandler(err: unknown, request: FastifyRequest, reply: FastifyReply): ErrorBody {
  const { body, headers } = toErrorBody(fromBodyError(err, request));
  if (body.statusCode >= 500) request.log.error({ err: withoutQuotedValues(err) }, 'request failed');
  else if (isDataException(err)) request.log.warn({ pg: refusalFacts(err) }, 'a request value was refused by Postgres');
  if (body.statusCode === 413 && !request.raw.complete) {
    // The client is still sending: answer, then read the rest, so it can read the 413 (oversized-body.ts).
    reply.hijack();
    answerThenDrain(request.raw, reply.raw, 413, JSON.stringify(body));
    return body;
  }
  reply.code(body.statusCode).headers(headers).send(body);
  return body;
}
