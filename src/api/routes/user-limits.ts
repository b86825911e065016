/**
 * Limits per user (docs/portal.md): an organization's defaults for its users, and one user's
 * overrides. Null sets a value back to the level below (user → organization → server).
 *
 *   GET    /user-limits                   the organization's settings and what they come to
 *   PATCH  /user-limits                   {max_endpoints_per_user?, user_events_per_second?, user_events_burst?}
 *   GET    /user-limits/users/:user_id    one user's override (or null) and effective limits
 *   PUT    /user-limits/users/:user_id    {max_endpoints?, events_per_second?, events_burst?}
 *   DELETE /user-limits/users/:user_id    the user is back on the organization's defaults
 */
import type { FastifyInstance } from 'fastify';
import type { Ledger } from '../../ledger/connection.ts';
import type { Config } from '../../config/config.ts';
import { shortText } from '../schemas.ts';
import {
  deleteUserLimits,
  readOrganizationLimits,
  readUserLimits,
  writeOrganizationLimits,
  writeUserLimits,
  type OrganizationLimitsRow,
  type UserLimitsRow,
} from '../../ledger/user-limits.ts';
import { resolveUserLimits, type UserLimitsReader } from '../../tenancy/user-limits.ts';
import { NotFoundError } from '../../errors/errors.ts';

const limitValue = { type: ['integer', 'null'], minimum: 0, maximum: 1_000_000 } as const;
const userParams = { type: 'object', required: ['user_id'], additionalProperties: false, properties: { user_id: shortText } } as const;

/** What these routes need of the process's services (narrower than the Services bag). */
type UserLimitRouteDeps = { ledger: Pick<Ledger, 'sql'>; config: Pick<Config, 'users'>; userLimits: UserLimitsReader };

export async function userLimitRoutes(app: FastifyInstance, services: UserLimitRouteDeps): Promise<void> {
  const tags = ['user limits'];
  const { sql } = services.ledger;
  const defaults = services.config.users;

  const organizationAnswer = (organizationId: string, settings: OrganizationLimitsRow) => {
    const effective = resolveUserLimits({ organization: settings, user: undefined }, defaults);
    return {
      organization_id: organizationId,
      settings,
      effective: {
        max_endpoints_per_user: effective.max_endpoints,
        user_events_per_second: effective.events_per_second,
        user_events_burst: effective.events_burst,
      },
    };
  };

  app.get('/user-limits', { schema: { tags } }, async (request) => {
    const org = request.tenant.writeOrganizationId;
    return organizationAnswer(org, await readOrganizationLimits(sql, org));
  });

  app.patch<{ Body: Partial<OrganizationLimitsRow> }>(
    '/user-limits',
    {
      schema: {
        tags,
        body: {
          type: 'object',
          minProperties: 1,
          additionalProperties: false,
          properties: { max_endpoints_per_user: limitValue, user_events_per_second: limitValue, user_events_burst: limitValue },
        },
      },
    },
    async (request) => {
      const org = request.tenant.writeOrganizationId;
      const settings = await writeOrganizationLimits(sql, org, request.body);
      services.userLimits.forget(org);
      return organizationAnswer(org, settings);
    },
  );

  const userAnswer = async (organizationId: string, userId: string) => {
    const stored = await readUserLimits(sql, organizationId, userId);
    return { organization_id: organizationId, user_id: userId, override: stored.user ?? null, effective: resolveUserLimits(stored, defaults) };
  };

  app.get<{ Params: { user_id: string } }>(
    '/user-limits/users/:user_id',
    { config: { auditPseudonymParam: 'user_id' }, schema: { tags, params: userParams } },
    async (request) => userAnswer(request.tenant.writeOrganizationId, request.params.user_id),
  );

  app.put<{ Params: { user_id: string }; Body: Partial<UserLimitsRow> }>(
    '/user-limits/users/:user_id',
    {
      config: { auditPseudonymParam: 'user_id' },
      schema: {
        tags,
        params: userParams,
        body: {
          type: 'object',
          minProperties: 1,
          additionalProperties: false,
          properties: { max_endpoints: limitValue, events_per_second: limitValue, events_burst: limitValue },
        },
      },
    },
    async (request) => {
      const org = request.tenant.writeOrganizationId;
      const b = request.body;
      await writeUserLimits(sql, org, request.params.user_id, {
        max_endpoints: b.max_endpoints ?? null,
        events_per_second: b.events_per_second ?? null,
        events_burst: b.events_burst ?? null,
      });
      services.userLimits.forget(org);
      return userAnswer(org, request.params.user_id);
    },
  );

  app.delete<{ Params: { user_id: string } }>(
    '/user-limits/users/:user_id',
    { config: { auditPseudonymParam: 'user_id' }, schema: { tags, params: userParams } },
    async (request, reply) => {
      const org = request.tenant.writeOrganizationId;
      if (!(await deleteUserLimits(sql, org, request.params.user_id))) throw new NotFoundError('user limits override for', request.params.user_id);
      services.userLimits.forget(org);
      reply.code(204);
    },
  );
}
