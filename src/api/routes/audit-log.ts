/** The audit log of management actions (api/plugins/audit-trail.ts writes it); admin key only. */
import type { FastifyInstance } from 'fastify';
import type { ApiServices } from '../api-services.ts';
import { isoDate, pageQuery, parseDate, shortText, uuid } from '../schemas.ts';
import { listAuditEntries, type AuditRow } from '../../ledger/audit-log.ts';
import { requireAdmin } from '../plugins/admin-only.ts';

/** What this module uses of the API's services. */
type AuditLogRouteDeps = Pick<ApiServices, 'ledger'>;

type AuditQuery = {
  organization_id?: string;
  key_id?: string;
  actor?: 'admin' | 'organization' | 'portal';
  action?: string;
  target_id?: string;
  since?: string;
  until?: string;
  limit: number;
  cursor?: string;
};

const presentAuditRow = (r: AuditRow) => ({
  id: r.id,
  at: r.created_at,
  actor: { kind: r.actor_kind, key_id: r.actor_key_id, organization_id: r.actor_organization_id },
  organization_id: r.organization_id,
  action: r.action,
  method: r.method,
  route: r.route,
  path: r.path,
  target_id: r.target_id,
  status_code: r.status_code,
  ip: r.ip,
  user_agent: r.user_agent,
  request_id: r.request_id,
});

export async function auditLogRoutes(app: FastifyInstance, services: AuditLogRouteDeps): Promise<void> {
  app.addHook('onRequest', requireAdmin);
  app.get<{ Querystring: AuditQuery }>(
    '/audit-log',
    {
      schema: {
        tags: ['audit'],
        querystring: {
          type: 'object',
          additionalProperties: false,
          properties: {
            organization_id: uuid,
            key_id: uuid,
            actor: { type: 'string', enum: ['admin', 'organization', 'portal'] },
            action: shortText,
            target_id: shortText,
            since: isoDate,
            until: isoDate,
            ...pageQuery,
          },
        },
      },
    },
    async (request) => {
      const q = request.query;
      const rows = await listAuditEntries(services.ledger.sql, {
        organizationId: q.organization_id,
        actorKeyId: q.key_id,
        actorKind: q.actor,
        action: q.action,
        targetId: q.target_id,
        since: parseDate('since', q.since),
        until: parseDate('until', q.until),
        before: q.cursor,
        limit: q.limit,
      });
      return { data: rows.map(presentAuditRow), next_cursor: rows.length === q.limit ? rows[rows.length - 1]?.id : null };
    },
  );
}
