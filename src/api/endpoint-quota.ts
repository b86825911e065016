/**
 * The endpoints one user may own (docs/portal.md): an endpoint created with an owner (through the
 * portal, or by an organization key naming a user_id) is refused with 422 once that user owns its
 * limit (the user's override, else the organization's default, else CARTEIRO_MAX_ENDPOINTS_PER_USER).
 * Endpoints without an owner are not counted.
 */
import type { Ledger } from '../ledger/connection.ts';
import type { UserLimitsReader } from '../tenancy/user-limits.ts';
import { insertEndpoint, type EndpointRow, type NewEndpoint } from '../ledger/endpoints.ts';
import { insertEndpointWithinQuota } from '../ledger/portal-deliveries.ts';
import { QuotaExceededError } from '../errors/errors.ts';

type QuotaDeps = { ledger: Pick<Ledger, 'sql'>; userLimits: UserLimitsReader };

export async function insertWithinUserQuota(services: QuotaDeps, e: NewEndpoint): Promise<EndpointRow> {
  const { userId } = e;
  if (userId === null) return insertEndpoint(services.ledger.sql, e);
  const { max_endpoints: limit } = await services.userLimits.fresh(e.organizationId, userId);
  const result = await insertEndpointWithinQuota(services.ledger.sql, { ...e, userId }, limit);
  if ('overQuota' in result) {
    throw new QuotaExceededError(
      'max_endpoints_per_user',
      limit,
      `user "${userId}" already owns ${result.owned} endpoints; the limit is ${limit} endpoints per user (max_endpoints_per_user)`,
      { user_id: userId, owned: result.owned },
    );
  }
  return result;
}
