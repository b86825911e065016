/**
 * Limits per user (migration 0024): an organization's defaults for its users and one user's
 * overrides. A null column means "not set here": the override falls back to the organization's
 * default, and that to the server's (config). Resolving the chain is the caller's job.
 */
import type { Sql } from './connection.ts';

export type OrganizationLimitsRow = {
  max_endpoints_per_user: number | null;
  user_events_per_second: number | null;
  user_events_burst: number | null;
};

export type UserLimitsRow = {
  max_endpoints: number | null;
  events_per_second: number | null;
  events_burst: number | null;
};

export type StoredUserLimits = { organization: OrganizationLimitsRow | undefined; user: UserLimitsRow | undefined };

const NO_ORGANIZATION_LIMITS: OrganizationLimitsRow = { max_endpoints_per_user: null, user_events_per_second: null, user_events_burst: null };

export async function readOrganizationLimits(sql: Sql, organizationId: string): Promise<OrganizationLimitsRow> {
  const [row] = await sql<OrganizationLimitsRow[]>`
    SELECT max_endpoints_per_user, user_events_per_second, user_events_burst FROM organization_limits WHERE organization_id = ${organizationId}`;
  return row ?? NO_ORGANIZATION_LIMITS;
}

/** Sets the given columns (null: back to the server's default); columns not given keep their value. */
export async function writeOrganizationLimits(sql: Sql, organizationId: string, changes: Partial<OrganizationLimitsRow>): Promise<OrganizationLimitsRow> {
  const current = await readOrganizationLimits(sql, organizationId);
  const next = { ...current, ...changes };
  const [row] = await sql<OrganizationLimitsRow[]>`
    INSERT INTO organization_limits (organization_id, max_endpoints_per_user, user_events_per_second, user_events_burst)
    VALUES (${organizationId}, ${next.max_endpoints_per_user}, ${next.user_events_per_second}, ${next.user_events_burst})
    ON CONFLICT (organization_id) DO UPDATE SET
      max_endpoints_per_user = ${'max_endpoints_per_user' in changes ? sql`EXCLUDED.max_endpoints_per_user` : sql`organization_limits.max_endpoints_per_user`},
      user_events_per_second = ${'user_events_per_second' in changes ? sql`EXCLUDED.user_events_per_second` : sql`organization_limits.user_events_per_second`},
      user_events_burst = ${'user_events_burst' in changes ? sql`EXCLUDED.user_events_burst` : sql`organization_limits.user_events_burst`},
      updated_at = now()
    RETURNING max_endpoints_per_user, user_events_per_second, user_events_burst`;
  return row as OrganizationLimitsRow;
}

/**
 * What ingestion needs before it looks at any one user: the organization's defaults, and whether any
 * of its users has an override at all (most have none, and then no per-user read is needed).
 */
export async function readOrganizationUserLimits(
  sql: Sql,
  organizationId: string,
): Promise<{ organization: OrganizationLimitsRow | undefined; anyUserOverrides: boolean }> {
  const [row] = await sql<{ organization: OrganizationLimitsRow | null; any_user_overrides: boolean }[]>`
    SELECT (SELECT to_jsonb(o) - 'organization_id' - 'updated_at' FROM organization_limits o WHERE o.organization_id = ${organizationId}) AS organization,
           EXISTS (SELECT 1 FROM user_limits u WHERE u.organization_id = ${organizationId}) AS any_user_overrides`;
  return { organization: row?.organization ?? undefined, anyUserOverrides: row?.any_user_overrides ?? false };
}

/** The organization's defaults and this user's overrides, in one round trip. */
export async function readUserLimits(sql: Sql, organizationId: string, userId: string): Promise<StoredUserLimits> {
  const [row] = await sql<{ organization: OrganizationLimitsRow | null; user: UserLimitsRow | null }[]>`
    SELECT (SELECT to_jsonb(o) - 'organization_id' - 'updated_at' FROM organization_limits o WHERE o.organization_id = ${organizationId}) AS organization,
           (SELECT to_jsonb(u) - 'organization_id' - 'user_id' - 'updated_at' FROM user_limits u
             WHERE u.organization_id = ${organizationId} AND u.user_id = ${userId}) AS "user"`;
  return { organization: row?.organization ?? undefined, user: row?.user ?? undefined };
}

export async function writeUserLimits(sql: Sql, organizationId: string, userId: string, limits: UserLimitsRow): Promise<UserLimitsRow> {
  const [row] = await sql<UserLimitsRow[]>`
    INSERT INTO user_limits (organization_id, user_id, max_endpoints, events_per_second, events_burst)
    VALUES (${organizationId}, ${userId}, ${limits.max_endpoints}, ${limits.events_per_second}, ${limits.events_burst})
    ON CONFLICT (organization_id, user_id) DO UPDATE SET
      max_endpoints = EXCLUDED.max_endpoints, events_per_second = EXCLUDED.events_per_second, events_burst = EXCLUDED.events_burst, updated_at = now()
    RETURNING max_endpoints, events_per_second, events_burst`;
  return row as UserLimitsRow;
}

/** Removes a user's overrides; false if there were none. */
export async function deleteUserLimits(sql: Sql, organizationId: string, userId: string): Promise<boolean> {
  const rows = await sql`DELETE FROM user_limits WHERE organization_id = ${organizationId} AND user_id = ${userId} RETURNING 1`;
  return rows.length > 0;
}
