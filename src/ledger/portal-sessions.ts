/**
 * Portal sessions (migration 0024): short-lived tokens a SaaS backend issues for one of its users. As
 * with API keys, the ledger holds a SHA-256 of each token, never the token; lookups go by hash. A
 * revoked or expired session stays listed (revoked_at, expires_at) until its organization is removed.
 */
import type { Sql } from './connection.ts';

export type PortalScope = 'read' | 'manage';

/** How the portal page looks for a session (migration 0029), as the API checked it. */
export type PortalTheme = { mode?: 'light' | 'dark' | 'auto'; primary_color?: string; logo_url?: string };

export type PortalSessionRow = {
  id: string;
  organization_id: string;
  user_id: string;
  prefix: string;
  scope: PortalScope;
  features: string[];
  theme: PortalTheme | null;
  created_by_key_id: string | null;
  created_at: Date;
  expires_at: Date;
  revoked_at: Date | null;
};

export type NewPortalSession = {
  organizationId: string;
  userId: string;
  tokenHash: string;
  prefix: string;
  scope: PortalScope;
  features: string[];
  theme: PortalTheme | null;
  createdByKeyId: string | null;
  ttlSeconds: number;
};

export async function insertPortalSession(sql: Sql, s: NewPortalSession): Promise<PortalSessionRow> {
  const [row] = await sql<PortalSessionRow[]>`
    INSERT INTO portal_sessions (organization_id, user_id, token_hash, prefix, scope, features, theme, created_by_key_id, expires_at)
    VALUES (${s.organizationId}, ${s.userId}, ${s.tokenHash}, ${s.prefix}, ${s.scope}, ${s.features}::text[], ${s.theme ? sql.json(s.theme as never) : null}, ${s.createdByKeyId},
            now() + ${s.ttlSeconds} * interval '1 second')
    RETURNING id, organization_id, user_id, prefix, scope, features, theme, created_by_key_id, created_at, expires_at, revoked_at`;
  return row as PortalSessionRow;
}

/** The session with this hash if it is neither revoked nor expired (by the ledger's clock). */
export async function findLivePortalSessionByHash(sql: Sql, tokenHash: string): Promise<PortalSessionRow | undefined> {
  const [row] = await sql<PortalSessionRow[]>`
    SELECT id, organization_id, user_id, prefix, scope, features, theme, created_by_key_id, created_at, expires_at, revoked_at
    FROM portal_sessions WHERE token_hash = ${tokenHash} AND revoked_at IS NULL AND expires_at > now()`;
  return row;
}

export async function listPortalSessions(
  sql: Sql,
  f: { organizationId: string | null; userId?: string | undefined; after?: string | undefined; limit: number },
): Promise<PortalSessionRow[]> {
  return sql<PortalSessionRow[]>`
    SELECT id, organization_id, user_id, prefix, scope, features, theme, created_by_key_id, created_at, expires_at, revoked_at
    FROM portal_sessions
    WHERE (${f.organizationId}::uuid IS NULL OR organization_id = ${f.organizationId}::uuid)
      AND (${f.userId ?? null}::text IS NULL OR user_id = ${f.userId ?? null})
      AND (${f.after ?? null}::uuid IS NULL OR id > ${f.after ?? null}::uuid)
    ORDER BY id LIMIT ${f.limit}`;
}

/** Revokes a session of this organization; revoking twice keeps the first time. Undefined: no such session. */
export async function revokePortalSession(sql: Sql, organizationId: string | null, id: string): Promise<PortalSessionRow | undefined> {
  const [row] = await sql<PortalSessionRow[]>`
    UPDATE portal_sessions SET revoked_at = coalesce(revoked_at, now())
    WHERE id = ${id} AND (${organizationId}::uuid IS NULL OR organization_id = ${organizationId}::uuid)
    RETURNING id, organization_id, user_id, prefix, scope, features, theme, created_by_key_id, created_at, expires_at, revoked_at`;
  return row;
}
