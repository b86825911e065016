/**
 * Row level security binds every role but the tables' owner (migration 0004). Carteiro itself must
 * see every organization's rows (the worker claims across all of them), so its connection has to be
 * the owner, a member of the owner's role, a superuser or a BYPASSRLS role. Run as anything else it
 * would silently see no rows at all; this check turns that into a clear error at start-up.
 */
import type { Sql } from './connection.ts';

export async function ledgerRoleSeesAllRows(sql: Sql): Promise<{ ok: boolean; role: string; owner: string }> {
  const [row] = await sql<{ ok: boolean; role: string; owner: string }[]>`
    SELECT (pg_has_role(current_user, c.relowner, 'USAGE') OR r.rolsuper OR r.rolbypassrls) AS ok,
           current_user::text AS role, pg_get_userbyid(c.relowner)::text AS owner
    FROM pg_class c CROSS JOIN pg_roles r
    WHERE c.oid = 'webhook_events'::regclass AND r.rolname = current_user`;
  return row ?? { ok: false, role: 'unknown', owner: 'unknown' };
}
