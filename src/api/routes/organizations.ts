/**
 * Organizations and their API keys; admin key only (an organization key gets 403, see
 * api/plugins/admin-only.ts). A new key is in the creation response once and never again: the
 * ledger keeps only its SHA-256 and its first characters.
 */
import type { FastifyInstance } from 'fastify';
import type { ApiServices } from '../api-services.ts';
import { idParams, pageQuery, shortText, uuid } from '../schemas.ts';
import { findOrganization, insertOrganization, listOrganizations, OPERATIONS_ORGANIZATION_ID, type OrganizationRow } from '../../ledger/organizations.ts';
import { insertApiKey, listApiKeys, revokeApiKey, type ApiKeyRow } from '../../ledger/api-keys.ts';
import { generateApiKey } from '../../tenancy/api-key-authenticator.ts';
import { requireAdmin } from '../plugins/admin-only.ts';
import { ConflictError, NotFoundError } from '../../errors/errors.ts';

/** What this module uses of the API's services. */
type OrganizationsRouteDeps = Pick<ApiServices, 'apiKeys' | 'ledger'>;

const presentOrganization = (o: OrganizationRow) => ({ id: o.id, name: o.name, created_at: o.created_at, updated_at: o.updated_at });
const presentKey = (k: ApiKeyRow) => ({
  id: k.id,
  organization_id: k.organization_id,
  name: k.name,
  prefix: k.prefix,
  created_at: k.created_at,
  last_used_at: k.last_used_at,
  revoked_at: k.revoked_at,
  active: k.revoked_at === null,
});

const keyParams = { type: 'object', required: ['id', 'keyId'], additionalProperties: false, properties: { id: uuid, keyId: uuid } } as const;
const pageOnly = { type: 'object', additionalProperties: false, properties: { ...pageQuery } } as const;

export async function organizationRoutes(app: FastifyInstance, services: OrganizationsRouteDeps): Promise<void> {
  const { ledger } = services;
  const tags = ['organizations'];
  app.addHook('onRequest', requireAdmin);

  async function loadOrganization(id: string): Promise<OrganizationRow> {
    const org = await findOrganization(ledger.sql, id);
    if (!org) throw new NotFoundError('organization', id);
    return org;
  }

  app.post<{ Body: { name: string } }>(
    '/organizations',
    { schema: { tags, body: { type: 'object', required: ['name'], additionalProperties: false, properties: { name: shortText } } } },
    async (request, reply) => {
      reply.code(201);
      return presentOrganization(await insertOrganization(ledger.sql, request.body.name));
    },
  );

  app.get<{ Querystring: { limit: number; cursor?: string } }>('/organizations', { schema: { tags, querystring: pageOnly } }, async (request) => {
    const rows = await listOrganizations(ledger.sql, { after: request.query.cursor, limit: request.query.limit });
    return { data: rows.map(presentOrganization), next_cursor: rows.length === request.query.limit ? rows[rows.length - 1]?.id : null };
  });

  app.get<{ Params: { id: string } }>('/organizations/:id', { schema: { tags, params: idParams } }, async (request) =>
    presentOrganization(await loadOrganization(request.params.id)),
  );

  app.post<{ Params: { id: string }; Body: { name?: string } | undefined }>(
    '/organizations/:id/keys',
    {
      config: { auditAction: 'organizations.keys.create' },
      schema: { tags, params: idParams, body: { type: 'object', additionalProperties: false, properties: { name: shortText } } },
    },
    async (request, reply) => {
      const org = await loadOrganization(request.params.id);
      if (org.id === OPERATIONS_ORGANIZATION_ID) {
        throw new ConflictError(
          'the operations organization takes no keys: its events describe endpoints of every organization, so only the admin key reads it',
          { field: 'id' },
        );
      }
      const made = generateApiKey();
      const row = await insertApiKey(ledger.sql, { organizationId: org.id, name: request.body?.name ?? 'default', keyHash: made.keyHash, prefix: made.prefix });
      reply.code(201);
      return { ...presentKey(row), key: made.key };
    },
  );

  app.get<{ Params: { id: string }; Querystring: { limit: number; cursor?: string } }>(
    '/organizations/:id/keys',
    { schema: { tags, params: idParams, querystring: pageOnly } },
    async (request) => {
      const org = await loadOrganization(request.params.id);
      const rows = await listApiKeys(ledger.sql, org.id, { after: request.query.cursor, limit: request.query.limit });
      return { data: rows.map(presentKey), next_cursor: rows.length === request.query.limit ? rows[rows.length - 1]?.id : null };
    },
  );

  app.delete<{ Params: { id: string; keyId: string } }>(
    '/organizations/:id/keys/:keyId',
    { config: { auditAction: 'organizations.keys.revoke' }, schema: { tags, params: keyParams } },
    async (request) => {
      const row = await revokeApiKey(ledger.sql, request.params.id, request.params.keyId);
      if (!row) throw new NotFoundError('API key', request.params.keyId);
      services.apiKeys.forget(row.id);
      return presentKey(row);
    },
  );
}
