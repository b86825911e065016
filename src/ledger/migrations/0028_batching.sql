-- Carteiro ledger, version 28: batching, opt-in per endpoint (docs/batching.md). A batching endpoint
-- receives several events in one signed POST: at most batch_max_events, waiting at most
-- batch_max_wait_ms for a batch to fill, optionally one event type per batch.
--
-- webhook_endpoints.batch_max_events     events per batch (2-1000); NULL: no batching, one event per POST.
-- webhook_endpoints.batch_max_wait_ms    how long the oldest due event waits for its batch to fill.
-- webhook_endpoints.batch_group_by_type  a batch holds events of one type only.
-- webhook_dispatches.batch_id            the batch a dispatch was sent in (the batch's webhook-id), set
--                                        by the claim that formed it. A pending dispatch with a batch_id
--                                        (a retry, a lease that ran out) is claimed only with every
--                                        pending member of its batch: a retry resends the same batch.
-- webhook_dispatches.unbatched           true on a dispatch that goes alone (a replayed event), NULL
--                                        otherwise: the claim never puts it in a batch.
-- webhook_deliveries.batch_id            the attempt log's row of each member carries its batch's id.
--
-- Only the rows of batching endpoints are ever read through the two indexes below (partial: a batch
-- waiting for its retry, a delivery that goes alone); other endpoints neither write nor read them.
ALTER TABLE webhook_endpoints ADD COLUMN batch_max_events integer;
ALTER TABLE webhook_endpoints ADD COLUMN batch_max_wait_ms integer;
ALTER TABLE webhook_endpoints ADD COLUMN batch_group_by_type boolean NOT NULL DEFAULT false;
ALTER TABLE webhook_endpoints ADD CONSTRAINT webhook_endpoints_batch_max_events CHECK (batch_max_events BETWEEN 2 AND 1000);
ALTER TABLE webhook_endpoints ADD CONSTRAINT webhook_endpoints_batch_max_wait_ms CHECK (batch_max_wait_ms BETWEEN 0 AND 3600000);
ALTER TABLE webhook_endpoints ADD CONSTRAINT webhook_endpoints_batch_not_fifo CHECK (batch_max_events IS NULL OR NOT fifo);

ALTER TABLE webhook_dispatches ADD COLUMN batch_id uuid;
ALTER TABLE webhook_dispatches ADD COLUMN unbatched boolean;
ALTER TABLE webhook_dispatches ADD CONSTRAINT webhook_dispatches_unbatched_true_or_null CHECK (unbatched);
CREATE INDEX webhook_dispatches_batch_due ON webhook_dispatches (webhook_endpoint_id, next_attempt_at, batch_id)
  WHERE batch_id IS NOT NULL AND status = 'pending';
CREATE INDEX webhook_dispatches_unbatched_due ON webhook_dispatches (webhook_endpoint_id, next_attempt_at)
  WHERE unbatched AND status = 'pending';

ALTER TABLE webhook_deliveries ADD COLUMN batch_id uuid;
