/**
 * Erasure on request: DELETE /users/:user_id/data removes everything Carteiro holds about a user
 * (ledger/erasure.ts says exactly what) in the caller's organization, or in every organization for
 * the admin without X-Organization-Id, and answers with what it did.
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { ApiServices } from '../api-services.ts';
import { eraseUserData, scrubLateAttempts } from '../../ledger/erasure.ts';
import { replaceRouteParam, USER_ID_PARAM } from '../../ledger/audit-log.ts';
import { userPseudonymizer, type Pseudonymizer } from '../../protection/erasure-pseudonym.ts';

/** What this module uses of the API's services. */
type UserDataRouteDeps = Pick<ApiServices, 'adminKey' | 'config' | 'ledger' | 'log'>;

/** A worker may record an attempt it had in flight until its lease ends; scrub after that. */
const LATE_SCRUB_MARGIN_MS = 2_000;

/**
 * Fastify's request log lines ("incoming request", server errors) carry the URL: for this route it is
 * logged with the user id replaced by its pseudonym, as in the audit log.
 */
function requestWithoutUserId(pseudonymize: Pseudonymizer) {
  return (req: FastifyRequest) => {
    const userId = (req.params as { user_id?: unknown } | undefined)?.user_id;
    const url =
      typeof userId === 'string'
        ? replaceRouteParam(req.routeOptions.url ?? '', req.url.split('?')[0] ?? '', USER_ID_PARAM, userId, pseudonymize(userId))
        : '(user data route)';
    return { method: req.method, url, host: req.host, remoteAddress: req.ip, remotePort: req.socket?.remotePort };
  };
}

export async function userDataRoutes(app: FastifyInstance, services: UserDataRouteDeps): Promise<void> {
  const { ledger, log, config } = services;
  const pseudonymize = userPseudonymizer(services.adminKey);

  app.delete<{ Params: { user_id: string } }>(
    '/users/:user_id/data',
    {
      schema: {
        tags: ['privacy'],
        summary: 'Erase everything Carteiro holds about a user (LGPD)',
        params: {
          type: 'object',
          required: ['user_id'],
          additionalProperties: false,
          properties: { user_id: { type: 'string', minLength: 1, maxLength: 200 } },
        },
      },
      config: { auditPseudonymParam: USER_ID_PARAM },
      logSerializers: { req: requestWithoutUserId(pseudonymize) },
    },
    async (request) => {
      const organizationId = request.tenant.readOrganizationId;
      const userId = request.params.user_id;
      const userPseudonym = pseudonymize(userId);
      const r = await eraseUserData(ledger.sql, organizationId, userId, { auditPseudonym: userPseudonym });
      let lateScrubAt: string | null = null;
      if (r.inFlightEventIds.length || r.inFlightEndpointIds.length) {
        const delay = config.worker.leaseMs + LATE_SCRUB_MARGIN_MS;
        lateScrubAt = new Date(Date.now() + delay).toISOString();
        const timer = setTimeout(() => {
          scrubLateAttempts(ledger.sql, r.inFlightEventIds, r.inFlightEndpointIds).then(
            (n) => n && log.info({ scrubbed: n }, 'erasure: removed attempts recorded after the erasure'),
            (err) => log.warn({ err }, 'erasure: late attempt scrub failed (retention removes them later)'),
          );
        }, delay);
        timer.unref();
      }
      const counts = {
        events_deleted: r.events_deleted,
        deliveries_cancelled: r.deliveries_cancelled,
        dispatches_deleted: r.dispatches_deleted,
        attempts_deleted: r.attempts_deleted,
        endpoints_deleted: r.endpoints_deleted,
        endpoints_unlinked: r.endpoints_unlinked,
        audit_entries_pseudonymized: r.audit_entries_pseudonymized,
      };
      // request.log: its reqId is the audit entry's request_id, which ties these counts to that entry.
      request.log.info({ organization: organizationId, user_pseudonym: userPseudonym, ...counts }, 'user data erased');
      return {
        user_id: userId,
        user_pseudonym: userPseudonym,
        organization_id: organizationId,
        ...counts,
        late_attempts_scrub_at: lateScrubAt,
        erased_at: new Date().toISOString(),
      };
    },
  );
}
