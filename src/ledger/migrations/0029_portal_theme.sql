-- Carteiro ledger, version 29: a portal session's theme (docs/portal.md, Theming).
--   portal_sessions.theme   what the SaaS backend asked the portal page to look like when it issued the
--                           session: {mode, primary_color, logo_url}, each optional, checked by the API
--                           (a light/dark/auto mode, a #rrggbb colour, an https: or small data:image URL).
--                           NULL: the page's defaults (and its URL parameters, which still apply).
ALTER TABLE portal_sessions ADD COLUMN theme jsonb;
