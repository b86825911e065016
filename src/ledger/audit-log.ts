/**
 * The audit log of management actions (written by api/plugins/audit-trail.ts), read by the admin.
 * Append-only: entries are never deleted, and never changed by what a caller sends. The one rewrite is
 * an erasure's, in entries whose subject (subject_user, migration 0017) is the erased user's id in
 * clear: only entries from before 0017 can hold one, since entries are now written with the pseudonym.
 */
import type { Sql } from './connection.ts';

export type AuditEntry = {
  organizationId: string | null;
  actorKind: 'admin' | 'organization' | 'portal';
  actorKeyId: string | null;
  actorOrganizationId: string | null;
  action: string;
  method: string;
  route: string;
  path: string;
  targetId: string | null;
  /** The person the action is about (a route's user id parameter), as its pseudonym. */
  subjectUser: string | null;
  statusCode: number;
  ip: string | null;
  userAgent: string | null;
  requestId: string | null;
};

export type AuditRow = {
  id: string;
  organization_id: string | null;
  actor_kind: 'admin' | 'organization' | 'portal';
  actor_key_id: string | null;
  actor_organization_id: string | null;
  action: string;
  method: string;
  route: string;
  path: string;
  target_id: string | null;
  subject_user: string | null;
  status_code: number;
  ip: string | null;
  user_agent: string | null;
  request_id: string | null;
  created_at: Date;
};

export async function insertAuditEntry(sql: Sql, e: AuditEntry): Promise<void> {
  await sql`
    INSERT INTO audit_log (organization_id, actor_kind, actor_key_id, actor_organization_id, action, method, route, path,
                           target_id, subject_user, status_code, ip, user_agent, request_id)
    VALUES (${e.organizationId}, ${e.actorKind}, ${e.actorKeyId}, ${e.actorOrganizationId}, ${e.action}, ${e.method}, ${e.route},
            ${e.path}, ${e.targetId}, ${e.subjectUser}, ${e.statusCode}, ${e.ip}, ${e.userAgent}, ${e.requestId})`;
}

/** The route parameter that names a person (the routes' `auditPseudonymParam`). */
export const USER_ID_PARAM = 'user_id';

/** Percent-decoded, or as it is when it is not valid percent-encoding. */
function decodedSegment(segment: string): string {
  try {
    return decodeURIComponent(segment);
  } catch {
    return segment;
  }
}

/**
 * The path with the segment that stands for route parameter `param` (by position in the route
 * pattern, e.g. `/api/webhooks/users/:user_id/data`) replaced by `replacement`, when that segment is
 * `value` (as sent: percent-encoded or not). By position, never by matching text elsewhere: a user id
 * "users" or "data" must not rename the route's own words.
 */
export function replaceRouteParam(route: string, path: string, param: string, value: string, replacement: string): string {
  const names = route.split('/');
  const segments = path.split('/');
  if (names.length !== segments.length) return path;
  return segments.map((s, i) => (names[i] === `:${param}` && decodedSegment(s) === value ? replacement : s)).join('/');
}

/**
 * Erasure: entries whose subject is the user (subject_user holds the id in clear: entries from
 * before migration 0017) get the pseudonym in its place — in subject_user, in target_id when that is
 * the user id, and in the path segment of the route's user id parameter — in the organization (every
 * organization when null). Who did what, when, stays. Nothing is chosen by matching text in paths or
 * targets: an id that merely looks like the user's (an endpoint id, a word of a route) touches no
 * entry. Returns how many were rewritten.
 */
export async function pseudonymizeAuditEntries(sql: Sql, organizationId: string | null, userId: string, pseudonym: string): Promise<number> {
  const rows = await sql<{ id: string; route: string; path: string; target_id: string | null }[]>`
    SELECT id, route, path, target_id FROM audit_log
    WHERE subject_user = ${userId} AND (${organizationId}::uuid IS NULL OR organization_id = ${organizationId}::uuid)`;
  if (rows.length === 0) return 0;
  const changed = rows.map((r) => ({
    id: r.id,
    path: replaceRouteParam(r.route, r.path, USER_ID_PARAM, userId, pseudonym),
    target: r.target_id === userId ? pseudonym : r.target_id,
  }));
  await sql`
    UPDATE audit_log a SET subject_user = ${pseudonym}, path = r.path, target_id = r.target_id
    FROM unnest(${changed.map((r) => r.id)}::uuid[], ${changed.map((r) => r.path)}::text[], ${changed.map((r) => r.target)}::text[]) AS r(id, path, target_id)
    WHERE a.id = r.id AND a.subject_user = ${userId}`;
  return changed.length;
}

export type AuditFilter = {
  organizationId?: string | undefined;
  actorKeyId?: string | undefined;
  actorKind?: 'admin' | 'organization' | 'portal' | undefined;
  /** Exact action, or a prefix ending in '.' or '*' (e.g. "endpoints.*"). */
  action?: string | undefined;
  targetId?: string | undefined;
  since?: Date | undefined;
  until?: Date | undefined;
  /** Exclusive upper bound on id: pages newest first. */
  before?: string | undefined;
  limit: number;
};

export async function listAuditEntries(sql: Sql, f: AuditFilter): Promise<AuditRow[]> {
  const prefix = f.action?.endsWith('*') ? f.action.slice(0, -1) : null;
  const exact = f.action !== undefined && prefix === null ? f.action : null;
  return sql<AuditRow[]>`
    SELECT * FROM audit_log
    WHERE (${f.organizationId ?? null}::uuid IS NULL OR organization_id = ${f.organizationId ?? null}::uuid)
      AND (${f.actorKeyId ?? null}::uuid IS NULL OR actor_key_id = ${f.actorKeyId ?? null}::uuid)
      AND (${f.actorKind ?? null}::text IS NULL OR actor_kind = ${f.actorKind ?? null})
      AND (${exact}::text IS NULL OR action = ${exact})
      AND (${prefix}::text IS NULL OR starts_with(action, ${prefix}))
      AND (${f.targetId ?? null}::text IS NULL OR target_id = ${f.targetId ?? null})
      AND (${f.since ?? null}::timestamptz IS NULL OR created_at >= ${f.since ?? null})
      AND (${f.until ?? null}::timestamptz IS NULL OR created_at < ${f.until ?? null})
      AND (${f.before ?? null}::uuid IS NULL OR id < ${f.before ?? null}::uuid)
    ORDER BY id DESC
    LIMIT ${f.limit}`;
}
