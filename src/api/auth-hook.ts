/**
 * Every route requires `Authorization: Bearer <key>` unless it declares `config: { public: true }`
 * (health checks and the API description). The resolved tenant rides on the request.
 *
 * A portal session token is accepted only by routes that declare `config: { portal: 'read' | 'manage' }`
 * (the scope they need): every other route answers it 403, whatever its path names, so the answer
 * tells nothing about what exists (docs/portal.md). A `read` session on a `manage` route gets 403 too.
 */
import type { FastifyInstance } from 'fastify';
import type { ApiServices } from './api-services.ts';
import { tenantFor, type Tenant } from '../tenancy/principal.ts';
import { ForbiddenError, NotFoundError, UnauthorizedError, ValidationError } from '../errors/errors.ts';
import { organizationExists } from '../tenancy/organization-check.ts';
import { createAuthFailureLimit } from './plugins/auth-failure-limit.ts';
import { isUuid, normalizeId } from './id-normalization.ts';

/** What this module uses of the API's services. */
type AuthHookDeps = Pick<ApiServices, 'authenticate' | 'config' | 'ledger' | 'log' | 'redis'>;

declare module 'fastify' {
  interface FastifyRequest {
    tenant: Tenant;
  }
  interface FastifyContextConfig {
    public?: boolean;
    /** The portal scope a route needs; without it a portal session token is refused (403). */
    portal?: 'read' | 'manage';
  }
}

export function registerAuth(app: FastifyInstance, services: AuthHookDeps): void {
  app.decorateRequest('tenant', null as unknown as Tenant);
  const failures = createAuthFailureLimit(services, services.log.child({ component: 'auth' }));
  app.addHook('onRequest', async (request) => {
    if (request.routeOptions.config?.public) return;
    // An address over its budget of failed authentications is refused before any key lookup.
    failures?.check(request.ip);
    const header = request.headers.authorization;
    const match = typeof header === 'string' ? /^Bearer\s+(\S{1,512})$/i.exec(header) : null;
    if (!match) {
      await failures?.fail(request.ip);
      throw new UnauthorizedError();
    }
    const principal = await services.authenticate(match[1] as string);
    if (!principal) {
      await failures?.fail(request.ip);
      throw new UnauthorizedError('invalid API key');
    }
    if (principal.kind === 'portal') {
      const needs = request.routeOptions.config?.portal;
      // The tenant rides on the refused request so the audit trail records the attempt.
      request.tenant = tenantFor(principal, undefined);
      if (!needs) throw new ForbiddenError('a portal session can use only the portal routes (/api/webhooks/portal/…)');
      if (needs === 'manage' && principal.scope !== 'manage') throw new ForbiddenError('this portal session is read-only: its scope is "read"');
    }
    const orgHeader = request.headers['x-organization-id'];
    if (orgHeader !== undefined && (typeof orgHeader !== 'string' || !isUuid(orgHeader))) {
      throw new ValidationError('X-Organization-Id must be a UUID', { field: 'headers.x-organization-id' });
    }
    // Compared with the key's organization and the ledger's rows as text: one spelling (lower case).
    const requested = orgHeader === undefined ? undefined : normalizeId(orgHeader);
    if (requested !== undefined) {
      if (principal.kind !== 'admin' && requested !== principal.organizationId) {
        // Known caller, refused: the tenant rides on the request so the audit trail records the attempt.
        request.tenant = tenantFor(principal, undefined);
        throw new ForbiddenError('an organization key can act only for its own organization');
      }
    }
    if (requested !== undefined && principal.kind === 'admin' && !(await organizationExists(services.ledger.sql, requested))) {
      // Refused at a target, so audited: as the admin acting for no organization (the entry must not
      // be attributed to one that does not exist), with the id it asked for as the target.
      request.tenant = tenantFor(principal, undefined);
      request.auditTargetId = requested;
      throw new NotFoundError('organization', requested);
    }
    request.tenant = tenantFor(principal, requested);
  });
}
