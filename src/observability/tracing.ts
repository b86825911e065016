/**
 * OpenTelemetry traces of one Carteiro process (docs/observability.md, "Traces"), built only when an
 * OTLP endpoint is configured. One trace follows an event: the ingest request's span (from the
 * caller's `traceparent`, if it sent one), the commit's span under it, and under the commit one span
 * per delivery attempt, in whichever worker process makes it and however much later. The commit's
 * traceparent is stored with the event (migration 0023) and comes back with every claim; each attempt
 * sends its own traceparent to the receiver.
 *
 * Nothing is registered globally (tracer provider, propagator, context manager): contexts are passed
 * by hand, so several Carteiro instances in one process (tests) keep their traces apart, and nothing
 * else in the process is traced by accident.
 */
import { randomUUID } from 'node:crypto';
import { ROOT_CONTEXT, SpanKind, SpanStatusCode, trace, type Attributes, type Context, type Span, type Tracer } from '@opentelemetry/api';
import { ExportResultCode, parseTraceParent } from '@opentelemetry/core';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { BatchSpanProcessor, TracerProvider, type SpanExporter } from '@opentelemetry/sdk-trace';
import {
  ATTR_ERROR_TYPE,
  ATTR_HTTP_REQUEST_METHOD,
  ATTR_HTTP_REQUEST_RESEND_COUNT,
  ATTR_HTTP_RESPONSE_STATUS_CODE,
  ATTR_SERVER_ADDRESS,
  ATTR_SERVER_PORT,
  ATTR_SERVICE_INSTANCE_ID,
  ATTR_SERVICE_NAME,
} from '@opentelemetry/semantic-conventions';
import type { Logger } from 'pino';
import type { TracingConfig } from '../config/config.ts';
import type { ClaimedDispatch } from '../ledger/claims.ts';
import type { DeliveryTracing } from '../worker/dispatcher.ts';
import { outcomeOf } from './metrics.ts';

/** Carteiro's own span attributes (the HTTP ones are OpenTelemetry's semantic conventions). */
export const ATTR = {
  eventId: 'carteiro.event.id',
  eventType: 'carteiro.event.type',
  /** A batch's: how many events, how many were duplicates, their ids (bounded) and their types. */
  eventCount: 'carteiro.event.count',
  eventDuplicates: 'carteiro.event.duplicates',
  eventIds: 'carteiro.event.ids',
  eventTypes: 'carteiro.event.types',
  endpointId: 'carteiro.endpoint.id',
  organizationId: 'carteiro.organization.id',
  dispatchId: 'carteiro.dispatch.id',
  destinationKind: 'carteiro.destination.kind',
  attempt: 'carteiro.delivery.attempt',
  outcome: 'carteiro.delivery.outcome',
  role: 'carteiro.role',
} as const;

export const SPAN_NAMES = { commit: 'ingest.commit', attempt: 'delivery.attempt' } as const;

/** A failed export is logged at most this often: a collector that is down would repeat it every batch. */
const EXPORT_FAILURE_LOG_INTERVAL_MS = 60_000;

export type Tracing = DeliveryTracing & {
  readonly tracer: Tracer;
  /** Ends the export: spans still queued are sent first. */
  shutdown(): Promise<void>;
};

export function createTracing(config: TracingConfig, opts: { role: string; log: Logger }): Tracing {
  const exporter = new OTLPTraceExporter({ url: config.tracesUrl, headers: config.headers });
  const provider = new TracerProvider({
    resource: resourceFromAttributes({
      [ATTR_SERVICE_NAME]: config.serviceName,
      [ATTR_SERVICE_INSTANCE_ID]: randomUUID(),
      [ATTR.role]: opts.role,
    }),
    spanProcessors: [new BatchSpanProcessor({ exporter: reportingFailures(exporter, opts.log), scheduledDelayMillis: config.exportDelayMs })],
  });
  const tracer = provider.getTracer('carteiro');

  return {
    tracer,
    startAttempt(d) {
      const span = tracer.startSpan(SPAN_NAMES.attempt, { kind: SpanKind.CLIENT, attributes: attemptAttributes(d) }, contextOf(d.trace_context));
      return {
        traceparent: traceparentOf(span),
        ended(record, result) {
          span.setAttribute(ATTR.outcome, outcomeOf(record));
          if (result.kind === 'response') span.setAttribute(ATTR_HTTP_RESPONSE_STATUS_CODE, result.statusCode);
          if (!record.success) {
            // The semantic conventions' error.type: the status code for an HTTP failure, else the kind of error.
            span.setAttribute(ATTR_ERROR_TYPE, result.kind === 'response' ? String(result.statusCode) : errorKind(result.error));
            span.setStatus({ code: SpanStatusCode.ERROR, message: record.error ?? undefined });
          }
          span.end();
        },
        crashed(err) {
          span.setAttribute(ATTR_ERROR_TYPE, (err as Error)?.name ?? 'Error');
          span.setStatus({ code: SpanStatusCode.ERROR, message: `internal: ${(err as Error)?.message}` });
          span.end();
        },
      };
    },
    shutdown: () => provider.shutdown(),
  };
}

function attemptAttributes(d: ClaimedDispatch): Attributes {
  const attributes: Attributes = {
    [ATTR_HTTP_REQUEST_METHOD]: 'POST',
    [ATTR.eventId]: d.webhook_event_id,
    [ATTR.eventType]: d.event_type,
    [ATTR.endpointId]: d.webhook_endpoint_id,
    [ATTR.organizationId]: d.organization_id,
    [ATTR.dispatchId]: d.id,
    [ATTR.destinationKind]: d.kind,
    [ATTR.attempt]: d.attempts,
  };
  // The receiver's host and port only: an endpoint URL's path or query often holds a token (chat
  // webhooks, n8n paths), so the URL itself is never an attribute.
  const url = URL.parse(d.url);
  if (url) {
    attributes[ATTR_SERVER_ADDRESS] = url.hostname;
    attributes[ATTR_SERVER_PORT] = Number(url.port) || (url.protocol === 'https:' ? 443 : 80);
  }
  if (d.attempts > 1) attributes[ATTR_HTTP_REQUEST_RESEND_COUNT] = d.attempts - 1;
  return attributes;
}

/** A network error's kind for error.type (the sender's messages start with it: "timeout after…", "ECONNREFUSED…"). */
function errorKind(message: string): string {
  return /^[\w.-]+/.exec(message)?.[0] ?? 'network-error';
}

/**
 * The context a stored or received W3C traceparent names, as the remote parent of a new span; the root
 * context (a new trace) when there is none or it is malformed.
 */
export function contextOf(traceparent: string | null | undefined): Context {
  const parent = traceparent ? parseTraceParent(traceparent) : null;
  return parent ? trace.setSpanContext(ROOT_CONTEXT, { ...parent, isRemote: true }) : ROOT_CONTEXT;
}

/** A span's W3C traceparent: version 00, trace id, span id, flags (01 when sampled). */
export function traceparentOf(span: Span): string {
  const { traceId, spanId, traceFlags } = span.spanContext();
  return `00-${traceId}-${spanId}-${(traceFlags & 0xff).toString(16).padStart(2, '0')}`;
}

/**
 * The exporter as is, but a failed export is logged (the SDK reports it only to its own diagnostic
 * logger, which nobody reads): a wrong endpoint or a collector that is down shows in Carteiro's log.
 * The message never carries the export headers, which may hold a key.
 */
function reportingFailures(exporter: SpanExporter, log: Logger): SpanExporter {
  let loggedAt = -Infinity;
  return {
    export(spans, done) {
      exporter.export(spans, (result) => {
        if (result.code !== ExportResultCode.SUCCESS && performance.now() - loggedAt >= EXPORT_FAILURE_LOG_INTERVAL_MS) {
          loggedAt = performance.now();
          log.warn({ err: result.error?.message, spans: spans.length }, 'exporting trace spans failed; they are dropped');
        }
        done(result);
      });
    },
    shutdown: () => exporter.shutdown(),
    forceFlush: () => exporter.forceFlush?.() ?? Promise.resolve(),
  };
}
