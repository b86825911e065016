/** Organizations: the tenants. Only the admin key manages them (api/routes/organizations.ts). */
import type { Sql } from './connection.ts';

/**
 * Holds Carteiro's own operational events, which describe endpoints of every organization: no API
 * key or database role may act for it (migration 0012), so only the admin key reads it.
 */
export const OPERATIONS_ORGANIZATION_ID = '00000000-0000-7000-8000-00000000000f';

export type OrganizationRow = { id: string; name: string; created_at: Date; updated_at: Date };

export async function insertOrganization(sql: Sql, name: string): Promise<OrganizationRow> {
  const [row] = await sql<OrganizationRow[]>`INSERT INTO organizations (name) VALUES (${name}) RETURNING id, name, created_at, updated_at`;
  return row as OrganizationRow;
}

export async function findOrganization(sql: Sql, id: string): Promise<OrganizationRow | undefined> {
  const [row] = await sql<OrganizationRow[]>`SELECT id, name, created_at, updated_at FROM organizations WHERE id = ${id}`;
  return row;
}

/** Pages by id (time-ordered), oldest first. */
export async function listOrganizations(sql: Sql, f: { after?: string | undefined; limit: number }): Promise<OrganizationRow[]> {
  return sql<OrganizationRow[]>`
    SELECT id, name, created_at, updated_at FROM organizations
    WHERE (${f.after ?? null}::uuid IS NULL OR id > ${f.after ?? null}::uuid)
    ORDER BY id LIMIT ${f.limit}`;
}
