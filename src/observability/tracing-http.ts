/**
 * The ingest requests' spans (docs/observability.md, "Traces"): a SERVER span for each request to a
 * route that takes events in (`config: { ingest: true }`), the child of the caller's span when it
 * sent a W3C `traceparent`, and under it the span of the request's commit (ingest-service.ts opens it
 * through the IngestTrace the route hands over). Registered only when tracing is on: otherwise the
 * API has no hook more and `request.ingestTrace` is undefined.
 */
import { ROOT_CONTEXT, SpanKind, SpanStatusCode, trace, type Span } from '@opentelemetry/api';
import {
  ATTR_ERROR_TYPE,
  ATTR_HTTP_REQUEST_METHOD,
  ATTR_HTTP_RESPONSE_STATUS_CODE,
  ATTR_HTTP_ROUTE,
  ATTR_URL_PATH,
  ATTR_URL_SCHEME,
} from '@opentelemetry/semantic-conventions';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { InsertResult } from '../ledger/events.ts';
import type { CommitTrace, IngestTrace } from '../ingest/ingest-service.ts';
import { ATTR, SPAN_NAMES, contextOf, traceparentOf, type Tracing } from './tracing.ts';

/** The request's span, for its route (the commit) and the error handler (the refusal's code). */
export type IngestRequestTrace = IngestTrace & {
  /** The request was refused with this error code (CARTEIRO_SCHEMA_VIOLATION, …). */
  refused(code: string): void;
};

declare module 'fastify' {
  interface FastifyRequest {
    /** Set on ingest routes while tracing is on (observability/tracing-http.ts). */
    ingestTrace?: IngestRequestTrace;
  }
}

/** A batch lists its events' ids on its spans up to this many; the count is always there. */
const MAX_LISTED_EVENT_IDS = 100;

type OpenRequest = IngestRequestTrace & { ended(statusCode: number | null): void };

export function registerIngestTracing(app: FastifyInstance, tracing: Tracing): void {
  const open = new WeakMap<FastifyRequest, OpenRequest>();
  app.decorateRequest('ingestTrace', undefined);
  app.addHook('onRequest', (request, _reply, done) => {
    if (request.routeOptions.config?.ingest) {
      const span = startRequestSpan(tracing, request);
      request.ingestTrace = span;
      open.set(request, span);
    }
    done();
  });
  app.addHook('onResponse', (request, reply, done) => {
    open.get(request)?.ended(reply.statusCode);
    done();
  });
  // A client that leaves before its answer: the span ends then, with no status code.
  app.addHook('onRequestAbort', (request, done) => {
    open.get(request)?.ended(null);
    done();
  });
}

function startRequestSpan(tracing: Tracing, request: FastifyRequest): OpenRequest {
  const route = request.routeOptions.url ?? request.url.split('?')[0];
  const traceparent = request.headers.traceparent;
  const span = tracing.tracer.startSpan(
    `${request.method} ${route}`,
    {
      kind: SpanKind.SERVER,
      attributes: {
        [ATTR_HTTP_REQUEST_METHOD]: request.method,
        [ATTR_HTTP_ROUTE]: route,
        // The path without its query string (which may carry a key); route parameters are event type names.
        [ATTR_URL_PATH]: request.url.split('?')[0],
        [ATTR_URL_SCHEME]: request.protocol,
      },
    },
    contextOf(typeof traceparent === 'string' ? traceparent : undefined),
  );
  let errorCode: string | null = null;
  let ended = false;
  return {
    startCommit: () => startCommitSpan(tracing, span),
    refused(code) {
      errorCode = code;
    },
    ended(statusCode) {
      if (ended) return;
      ended = true;
      if (statusCode === null) {
        span.setAttribute(ATTR_ERROR_TYPE, 'aborted');
      } else {
        span.setAttribute(ATTR_HTTP_RESPONSE_STATUS_CODE, statusCode);
        if (statusCode >= 400) span.setAttribute(ATTR_ERROR_TYPE, errorCode ?? String(statusCode));
        // A server span is in error for 5xx only: a refused event (4xx) is the caller's mistake, well handled.
        if (statusCode >= 500) span.setStatus({ code: SpanStatusCode.ERROR });
      }
      span.end();
    },
  };
}

function startCommitSpan(tracing: Tracing, requestSpan: Span): CommitTrace {
  const span = tracing.tracer.startSpan(SPAN_NAMES.commit, { kind: SpanKind.INTERNAL }, trace.setSpan(ROOT_CONTEXT, requestSpan));
  return {
    traceparent: traceparentOf(span),
    committed(results) {
      // On both spans: the request's is the one people search for, by event id.
      const attributes = eventAttributes(results);
      span.setAttributes(attributes);
      requestSpan.setAttributes(attributes);
      span.end();
    },
    failed(err) {
      // Carteiro's error code (CARTEIRO_LEDGER_UNAVAILABLE, …), else the error's class.
      const code = (err as { code?: unknown })?.code;
      span.setAttribute(ATTR_ERROR_TYPE, typeof code === 'string' ? code : ((err as Error)?.name ?? 'Error'));
      span.setStatus({ code: SpanStatusCode.ERROR, message: (err as Error)?.message });
      span.end();
    },
  };
}

/** One event: its id, type and whether it was a duplicate. A batch: how many, and their ids (up to a bound). */
function eventAttributes(results: readonly InsertResult[]) {
  const first = results[0];
  const common = {
    [ATTR.eventCount]: results.length,
    [ATTR.eventDuplicates]: results.filter((r) => r.duplicate).length,
    ...(first ? { [ATTR.organizationId]: first.organization_id } : {}),
  };
  if (results.length === 1 && first) return { ...common, [ATTR.eventId]: first.id, [ATTR.eventType]: first.event_type };
  return {
    ...common,
    [ATTR.eventIds]: results.slice(0, MAX_LISTED_EVENT_IDS).map((r) => r.id),
    [ATTR.eventTypes]: [...new Set(results.map((r) => r.event_type))],
  };
}
