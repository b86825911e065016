/**
 * Organization API keys. The ledger holds a SHA-256 of each key, never the key: a key is shown once,
 * when it is made. Lookups go by hash; a revoked key stays (with revoked_at) so the audit trail can
 * still name it.
 */
import type { Sql } from './connection.ts';

export type ApiKeyRow = {
  id: string;
  organization_id: string;
  name: string;
  prefix: string;
  created_at: Date;
  last_used_at: Date | null;
  revoked_at: Date | null;
};

export async function insertApiKey(sql: Sql, k: { organizationId: string; name: string; keyHash: string; prefix: string }): Promise<ApiKeyRow> {
  const [row] = await sql<ApiKeyRow[]>`
    INSERT INTO api_keys (organization_id, name, key_hash, prefix)
    VALUES (${k.organizationId}, ${k.name}, ${k.keyHash}, ${k.prefix})
    RETURNING id, organization_id, name, prefix, created_at, last_used_at, revoked_at`;
  return row as ApiKeyRow;
}

/** The live (unrevoked) key with this hash, if any. */
export async function findActiveApiKeyByHash(sql: Sql, keyHash: string): Promise<{ id: string; organization_id: string } | undefined> {
  const [row] = await sql<{ id: string; organization_id: string }[]>`
    SELECT id, organization_id FROM api_keys WHERE key_hash = ${keyHash} AND revoked_at IS NULL`;
  return row;
}

export async function listApiKeys(sql: Sql, organizationId: string, f: { after?: string | undefined; limit: number }): Promise<ApiKeyRow[]> {
  return sql<ApiKeyRow[]>`
    SELECT id, organization_id, name, prefix, created_at, last_used_at, revoked_at FROM api_keys
    WHERE organization_id = ${organizationId} AND (${f.after ?? null}::uuid IS NULL OR id > ${f.after ?? null}::uuid)
    ORDER BY id LIMIT ${f.limit}`;
}

/** Revokes a key of this organization; revoking twice keeps the first time. Undefined if there is no such key. */
export async function revokeApiKey(sql: Sql, organizationId: string, id: string): Promise<ApiKeyRow | undefined> {
  const [row] = await sql<ApiKeyRow[]>`
    UPDATE api_keys SET revoked_at = coalesce(revoked_at, now())
    WHERE organization_id = ${organizationId} AND id = ${id}
    RETURNING id, organization_id, name, prefix, created_at, last_used_at, revoked_at`;
  return row;
}

/** Marks keys as used now: one statement for all the keys seen since the last write. */
export async function touchApiKeys(sql: Sql, ids: string[]): Promise<void> {
  if (ids.length === 0) return;
  await sql`UPDATE api_keys SET last_used_at = now() WHERE id = ANY(${ids}::uuid[])`;
}
