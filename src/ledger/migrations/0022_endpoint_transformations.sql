-- Carteiro ledger, version 22: endpoint transformations (docs/transformations.md). An endpoint may hold
-- a JavaScript function of the event that decides the body, adds headers, extends the URL's path or
-- cancels the delivery; the worker runs it in a sandbox before signing, so what is signed is what is sent.
--
-- transformation  the code as the API was given it (or a template's, filled in): `function handler(webhook) { … }`.
--                 Checked (compiled, `handler` defined) when the endpoint is written. NULL: none, the event
--                 is sent as Carteiro's envelope.
-- template        the preset the code came from (slack, discord, …), for display; the code may have been
--                 edited since. NULL when the code is the user's own, and always NULL without code.
--
-- A transformation that cancels a delivery settles its dispatch as 'cancelled' (a status of migration
-- 0001), with last_error saying so; nothing is sent and no attempt is written.
ALTER TABLE webhook_endpoints ADD COLUMN transformation text;
ALTER TABLE webhook_endpoints ADD COLUMN template text;
ALTER TABLE webhook_endpoints ADD CONSTRAINT webhook_endpoints_transformation_size CHECK (length(transformation) BETWEEN 1 AND 32768);
ALTER TABLE webhook_endpoints ADD CONSTRAINT webhook_endpoints_template_with_code CHECK (template IS NULL OR transformation IS NOT NULL);
ALTER TABLE webhook_endpoints ADD CONSTRAINT webhook_endpoints_template_name CHECK (template ~ '^[a-z][a-z0-9_-]{0,39}$');
