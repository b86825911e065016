/**
 * Who is calling, and for which organization. The admin key acts for any organization: it reads
 * across all of them unless it names one (X-Organization-Id), and writes to the one it names or to
 * the default organization. An organization key acts only for its own organization, and a portal
 * session only for its user within its organization.
 */
export const DEFAULT_ORGANIZATION_ID = '00000000-0000-7000-8000-000000000000';

import type { PortalPrincipal } from './portal-principal.ts';

export type Principal = { kind: 'admin' } | { kind: 'organization'; organizationId: string; keyId: string } | PortalPrincipal;

export type Tenant = {
  principal: Principal;
  /** Filter for reads; null = every organization (admin only). */
  readOrganizationId: string | null;
  /** Organization that new rows belong to. */
  writeOrganizationId: string;
};

export function tenantFor(principal: Principal, requestedOrganizationId: string | undefined): Tenant {
  if (principal.kind === 'organization' || principal.kind === 'portal') {
    return { principal, readOrganizationId: principal.organizationId, writeOrganizationId: principal.organizationId };
  }
  return {
    principal,
    readOrganizationId: requestedOrganizationId ?? null,
    writeOrganizationId: requestedOrganizationId ?? DEFAULT_ORGANIZATION_ID,
  };
}

/** Looks a bearer token up; resolves null when it is not a valid key. */
export type Authenticator = (token: string) => Promise<Principal | null>;
