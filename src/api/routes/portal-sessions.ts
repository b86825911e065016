/**
 * Portal sessions, issued by a SaaS backend for one of its users (docs/portal.md). An organization key
 * (or the admin key, with X-Organization-Id) asks for one; the token is in that answer only, the
 * ledger keeps its hash. A portal token itself may not use these routes (no `config.portal`: 403).
 *
 *   POST   /portal/sessions      {user_id, ttl_seconds?, scope?, features?, theme?} → 201 {token, url, …}
 *   GET    /portal/sessions      ?user_id= → the sessions (never their tokens)
 *   DELETE /portal/sessions/:id  revoke: the token answers 401 from then on
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { Ledger } from '../../ledger/connection.ts';
import type { Config } from '../../config/config.ts';
import { idParams, pageQuery, shortText } from '../schemas.ts';
import {
  insertPortalSession,
  listPortalSessions,
  revokePortalSession,
  type PortalScope,
  type PortalSessionRow,
  type PortalTheme,
} from '../../ledger/portal-sessions.ts';
import { checkPortalTheme, portalThemeSchema } from '../portal-theme.ts';
import { generatePortalToken } from '../../tenancy/portal-sessions.ts';
import { NotFoundError } from '../../errors/errors.ts';

/** The longest a session may live: a token handed to a browser should not outlive a working day. */
export const MAX_PORTAL_SESSION_SECONDS = 24 * 3600;
const MIN_PORTAL_SESSION_SECONDS = 60;

type SessionBody = { user_id: string; ttl_seconds?: number; scope?: PortalScope; features?: string[]; theme?: PortalTheme };

export function presentPortalSession(s: PortalSessionRow) {
  return {
    id: s.id,
    organization_id: s.organization_id,
    user_id: s.user_id,
    prefix: s.prefix,
    scope: s.scope,
    features: s.features,
    theme: s.theme ?? null,
    created_at: s.created_at,
    expires_at: s.expires_at,
    revoked_at: s.revoked_at,
    active: s.revoked_at === null && s.expires_at > new Date(),
  };
}

/** What these routes need of the process's services (narrower than the Services bag). */
type SessionRouteDeps = { ledger: Pick<Ledger, 'sql'>; config: Pick<Config, 'portal'> };

/** Where the portal page is served: CARTEIRO_PUBLIC_URL, else API_BASE_URL, else the host this request came to. */
function portalBaseUrl(services: SessionRouteDeps, request: FastifyRequest): string {
  const configured = services.config.portal.publicUrl;
  return (configured ?? `${request.protocol}://${request.host}`).replace(/\/+$/, '');
}

export async function portalSessionRoutes(app: FastifyInstance, services: SessionRouteDeps): Promise<void> {
  const tags = ['portal sessions'];
  const { sql } = services.ledger;

  app.post<{ Body: SessionBody }>(
    '/portal/sessions',
    {
      schema: {
        tags,
        body: {
          type: 'object',
          required: ['user_id'],
          additionalProperties: false,
          properties: {
            user_id: shortText,
            ttl_seconds: { type: 'integer', minimum: MIN_PORTAL_SESSION_SECONDS, maximum: MAX_PORTAL_SESSION_SECONDS },
            scope: { type: 'string', enum: ['read', 'manage'] },
            features: {
              type: 'array',
              maxItems: 20,
              uniqueItems: true,
              items: { type: 'string', minLength: 1, maxLength: 50, pattern: '^[a-z][a-z0-9_.-]*$' },
            },
            theme: portalThemeSchema,
          },
        },
      },
    },
    async (request, reply) => {
      const b = request.body;
      const theme = checkPortalTheme(b.theme);
      const principal = request.tenant.principal;
      const { token, tokenHash, prefix } = generatePortalToken();
      const row = await insertPortalSession(sql, {
        organizationId: request.tenant.writeOrganizationId,
        userId: b.user_id,
        tokenHash,
        prefix,
        scope: b.scope ?? 'read',
        features: b.features ?? [],
        theme,
        createdByKeyId: principal.kind === 'organization' ? principal.keyId : null,
        ttlSeconds: b.ttl_seconds ?? services.config.portal.sessionTtlSeconds,
      });
      reply.code(201);
      return { ...presentPortalSession(row), token, url: `${portalBaseUrl(services, request)}/portal?token=${encodeURIComponent(token)}` };
    },
  );

  app.get<{ Querystring: { user_id?: string; limit: number; cursor?: string } }>(
    '/portal/sessions',
    { schema: { tags, querystring: { type: 'object', additionalProperties: false, properties: { user_id: shortText, ...pageQuery } } } },
    async (request) => {
      const q = request.query;
      const rows = await listPortalSessions(sql, { organizationId: request.tenant.readOrganizationId, userId: q.user_id, after: q.cursor, limit: q.limit });
      return { data: rows.map(presentPortalSession), next_cursor: rows.length === q.limit ? rows[rows.length - 1]?.id : null };
    },
  );

  app.delete<{ Params: { id: string } }>('/portal/sessions/:id', { schema: { tags, params: idParams } }, async (request) => {
    const row = await revokePortalSession(sql, request.tenant.readOrganizationId, request.params.id);
    if (!row) throw new NotFoundError('portal session', request.params.id);
    return presentPortalSession(row);
  });
}
