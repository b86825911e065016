-- The person an audit entry is about, as a field of its own (issue 16, fault 4).
--
-- Erasure used to find the entries naming a user by matching the user id against target_id and
-- against the segments of the path, then rewrote them. Any string did: an organization erasing "user"
-- <one of its endpoint ids>, or "endpoints", rewrote the admin's entries about that endpoint or every
-- entry of the organization, and `GET /audit-log?target_id=<endpoint>` found nothing any more.
--
-- subject_user holds the user id a route acts on (its user id parameter, DELETE /users/:user_id/data
-- today), written as its keyed pseudonym (security/erasure-pseudonym.ts). Erasure touches only
-- entries whose subject_user is the user's id in clear, which only entries written before this
-- migration can hold; nothing else in an entry is ever rewritten.
--
-- Idempotent (the tests run it twice).
ALTER TABLE audit_log ADD COLUMN IF NOT EXISTS subject_user text;

-- Earlier entries of that route named the user in target_id (in clear before pseudonyms, or already
-- as one): the route's user id parameter was always its target.
UPDATE audit_log SET subject_user = target_id
WHERE subject_user IS NULL AND route = '/api/webhooks/users/:user_id/data' AND target_id IS NOT NULL;

CREATE INDEX IF NOT EXISTS audit_log_subject_user ON audit_log (subject_user) WHERE subject_user IS NOT NULL;
