-- Carteiro ledger, version 23: the trace an event belongs to (docs/observability.md, "Traces").
--
-- trace_context   the W3C traceparent (00-<trace id>-<span id>-<flags>) of the span that committed the
--                 event, written by an API with tracing on. The workers read it with each claim, so
--                 every delivery attempt, in any process and however much later, is a span of the
--                 same trace; the receiver gets the attempt's own traceparent. NULL when tracing was
--                 off, and for events written straight into the database (table capture).
-- Adding a nullable column without a default rewrites nothing: it is instant on any table size.
ALTER TABLE webhook_events ADD COLUMN trace_context text;
