-- Only Carteiro's own connection may mark an event's data as sealed.
--
-- `data_sealed = true` tells the API and the worker that every `enc:v1:` value in the row's data is
-- Carteiro's own ciphertext, to be opened for the organization's callers and receivers. A tenant role
-- (docs/security.md grants one INSERT and UPDATE on webhook_events, under row level security) could
-- set it on a row of its own organization holding a ciphertext copied from another organization's
-- event, and read that organization's personal data back through the API or its own endpoint.
--
-- A row written by any role under row level security (anyone but the owner) can no longer be marked
-- sealed: it stays unsealed until Carteiro's sealing pass (migration 0010) seals it, and that pass
-- seals every value that already looks sealed once more, so a copied ciphertext comes back as
-- ciphertext. The WHEN clause keeps the trigger from running at all for Carteiro's own writes.
CREATE FUNCTION sealed_by_carteiro_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'INSERT' OR NEW.data IS DISTINCT FROM OLD.data OR NOT OLD.data_sealed THEN
    NEW.data_sealed := false;
  END IF;
  RETURN NEW;
END
$$;

CREATE TRIGGER webhook_events_sealed_by_carteiro_only
  BEFORE INSERT OR UPDATE OF data, data_sealed ON webhook_events
  FOR EACH ROW WHEN (NEW.data_sealed AND row_security_active('webhook_events'))
  EXECUTE FUNCTION sealed_by_carteiro_only();
