/**
 * The audit log of management actions (written by security/tenancy/audit-trail.ts), read by the admin.
 * Entries are never deleted; an erasure replaces the erased user's id in them by a pseudonym.
 */
import type { Sql } from './connection.ts';

export type AuditEntry = {
  organizationId: string | null;
  actorKind: 'admin' | 'organization';
  actorKeyId: string | null;
  actorOrganizationId: string | null;
  action: string;
  method: string;
  route: string;
  path: string;
  targetId: string | null;
  statusCode: number;
  ip: string | null;
  userAgent: string | null;
  requestId: string | null;
};

export type AuditRow = {
  id: string;
  organization_id: string | null;
  actor_kind: 'admin' | 'organization';
  actor_key_id: string | null;
  actor_organization_id: string | null;
  action: string;
  method: string;
  route: string;
  path: string;
  target_id: string | null;
  status_code: number;
  ip: string | null;
  user_agent: string | null;
  request_id: string | null;
  created_at: Date;
};

export async function insertAuditEntry(sql: Sql, e: AuditEntry): Promise<void> {
  await sql`
    INSERT INTO audit_log (organization_id, actor_kind, actor_key_id, actor_organization_id, action, method, route, path,
                           target_id, status_code, ip, user_agent, request_id)
    VALUES (${e.organizationId}, ${e.actorKind}, ${e.actorKeyId}, ${e.actorOrganizationId}, ${e.action}, ${e.method}, ${e.route},
            ${e.path}, ${e.targetId}, ${e.statusCode}, ${e.ip}, ${e.userAgent}, ${e.requestId})`;
}

/** Percent-decoded, or as it is when it is not valid percent-encoding. */
function decodedSegment(segment: string): string {
  try {
    return decodeURIComponent(segment);
  } catch {
    return segment;
  }
}

/**
 * The path with each segment that is `value` (as sent: percent-encoded or not) replaced by
 * `replacement`. Whole segments only: a short user id must not match inside another id.
 */
export function replacePathSegment(path: string, value: string, replacement: string): string {
  return path.split('/').map((s) => (s !== '' && decodedSegment(s) === value ? replacement : s)).join('/');
}

/**
 * Erasure: earlier entries that name the user — target_id is the user id, or a path segment is —
 * get the pseudonym in its place, in the organization (every organization when null). The entries
 * stay (who did what, when); only the user id goes. Returns how many were rewritten.
 */
export async function pseudonymizeAuditEntries(sql: Sql, organizationId: string | null, userId: string, pseudonym: string): Promise<number> {
  // Candidates: the id as a whole segment, as sent or percent-encoded (either case of hex digits), so
  // that a short id ("1") does not fetch every row; replacePathSegment then decides on decoded segments.
  const rows = await sql<{ id: string; path: string; target_id: string | null }[]>`
    SELECT id, path, target_id FROM audit_log
    WHERE (${organizationId}::uuid IS NULL OR organization_id = ${organizationId}::uuid)
      AND (target_id = ${userId}
           OR strpos(path || '/', ${`/${userId}/`}) > 0
           OR strpos(lower(path) || '/', ${`/${encodeURIComponent(userId)}/`.toLowerCase()}) > 0)`;
  const changed = rows
    .map((r) => ({ id: r.id, path: replacePathSegment(r.path, userId, pseudonym), target: r.target_id === userId ? pseudonym : r.target_id, was: r }))
    .filter((r) => r.path !== r.was.path || r.target !== r.was.target_id);
  if (changed.length === 0) return 0;
  await sql`
    UPDATE audit_log a SET path = r.path, target_id = r.target_id
    FROM unnest(${changed.map((r) => r.id)}::uuid[], ${changed.map((r) => r.path)}::text[], ${changed.map((r) => r.target)}::text[]) AS r(id, path, target_id)
    WHERE a.id = r.id`;
  return changed.length;
}

export type AuditFilter = {
  organizationId?: string | undefined;
  actorKeyId?: string | undefined;
  actorKind?: 'admin' | 'organization' | undefined;
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
