/**
 * Every route requires `Authorization: Bearer <key>` unless it declares `config: { public: true }`
 * (health checks and the API description). The resolved tenant rides on the request.
 */
import type { FastifyInstance } from 'fastify';
import type { Services } from '../runtime/services.ts';
import { tenantFor, type Tenant } from './tenant.ts';
import { ForbiddenError, NotFoundError, UnauthorizedError, ValidationError } from '../errors/errors.ts';
import { organizationExists } from '../security/tenancy/organization-check.ts';
import { createAuthFailureLimit } from '../security/tenancy/auth-failure-limit.ts';
import { isUuid, normalizeId } from './id-normalization.ts';

declare module 'fastify' {
  interface FastifyRequest {
    tenant: Tenant;
  }
  interface FastifyContextConfig {
    public?: boolean;
  }
}

export function registerAuth(app: FastifyInstance, services: Services): void {
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
    const orgHeader = request.headers['x-organization-id'];
    if (orgHeader !== undefined && (typeof orgHeader !== 'string' || !isUuid(orgHeader))) {
      throw new ValidationError('X-Organization-Id must be a UUID', { field: 'headers.x-organization-id' });
    }
    // Compared with the key's organization and the ledger's rows as text: one spelling (lower case).
    const requested = orgHeader === undefined ? undefined : normalizeId(orgHeader);
    if (requested !== undefined) {
      if (principal.kind === 'organization' && requested !== principal.organizationId) {
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
