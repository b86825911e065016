-- Carteiro ledger, version 10: personal fields of events written straight into the database (table
-- capture, or any other INSERT into webhook_events) are sealed at rest too.
--
-- Carteiro's own writers seal at ingestion (the encryption key never enters the database) and mark
-- the row data_sealed. A row that arrives any other way is unmarked, and a worker seals its
-- CARTEIRO_PII_FIELDS shortly after commit (jobs/stored-event-sealing.ts), through the small partial
-- index below, which holds only the rows still waiting.
--
-- Rows already in the ledger count as sealed (as they were before): the column's default is true for
-- them and false from now on.
ALTER TABLE webhook_events ADD COLUMN data_sealed boolean NOT NULL DEFAULT true;
ALTER TABLE webhook_events ALTER COLUMN data_sealed SET DEFAULT false;
CREATE INDEX webhook_events_unsealed ON webhook_events (id) WHERE NOT data_sealed;
