/**
 * A portal session acts for one user of one organization, with the scope it was issued with; it is
 * accepted only by the routes marked for it (`config.portal`, api/auth-hook.ts) and answers 403
 * everywhere else (docs/portal.md). One of tenancy/principal.ts's principals; a module of its own so the
 * tenancy modules and tenancy/principal.ts can share it without importing each other.
 */
export type PortalPrincipal = {
  kind: 'portal';
  organizationId: string;
  userId: string;
  sessionId: string;
  scope: 'read' | 'manage';
  /** How the portal page looks for this session (migration 0029), as issued; null: the page's defaults. */
  theme?: { mode?: 'light' | 'dark' | 'auto'; primary_color?: string; logo_url?: string } | null;
};
