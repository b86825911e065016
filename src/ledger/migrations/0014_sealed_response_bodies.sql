-- Receivers' response bodies are sealed at rest.
--
-- A receiver may answer with the event it got (an n8n workflow that responds with its last node's
-- output does), so webhook_deliveries.response_body held personal data in plaintext, in dumps and
-- backups, beside event data that is sealed. Carteiro now seals every non-empty response body
-- (AES-256-GCM, as event data) before it is written, and marks the row: only a marked body is
-- opened for display, so a receiver that answers with a ciphertext copied from elsewhere gets its
-- own bytes shown back, never their plaintext. Rows written before this stay as they were.
ALTER TABLE webhook_deliveries ADD COLUMN response_sealed boolean NOT NULL DEFAULT false;
