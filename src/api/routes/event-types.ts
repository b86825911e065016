/** The event catalog: built-in types and those an organization registers, with their schemas. */
import type { FastifyInstance } from 'fastify';
import type { ApiServices } from '../api-services.ts';
import { eventTypeName, priority } from '../schemas.ts';
import type { EventTypeDefinition } from '../../ledger/event-types.ts';

/** What this module uses of the API's services. */
type EventTypesRouteDeps = Pick<ApiServices, 'catalog'>;

export async function eventTypeRoutes(app: FastifyInstance, services: EventTypesRouteDeps): Promise<void> {
  const tags = ['event types'];
  app.get('/event-types', { schema: { tags } }, async (request) => ({ data: await services.catalog.list(request.tenant.writeOrganizationId) }));

  app.post<{ Body: { name: string; description?: string; schema?: Record<string, unknown>; priority?: 'high' | 'normal' } }>(
    '/event-types',
    {
      schema: {
        tags,
        body: {
          type: 'object',
          required: ['name'],
          additionalProperties: false,
          properties: { name: eventTypeName, description: { type: 'string', maxLength: 2000 }, schema: { type: 'object' }, priority },
        },
      },
    },
    async (request, reply) => {
      const def: EventTypeDefinition = {
        name: request.body.name,
        description: request.body.description ?? '',
        schema: request.body.schema ?? { type: 'object' },
        priority: request.body.priority ?? 'normal',
      };
      reply.code(201);
      return services.catalog.register(request.tenant.writeOrganizationId, def);
    },
  );
}
