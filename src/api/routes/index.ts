/** Every route module, registered under /api/webhooks by api/app.ts. */
import type { FastifyInstance } from 'fastify';
import type { ApiServices } from '../api-services.ts';
import { healthRoutes } from './health.ts';
import { eventRoutes } from './events.ts';
import { endpointRoutes } from './endpoints.ts';
import { eventTypeRoutes } from './event-types.ts';
import { replayRoutes } from './replay.ts';
import { userDataRoutes } from './user-data.ts';
import { organizationRoutes } from './organizations.ts';
import { auditLogRoutes } from './audit-log.ts';
import { supabaseRoutes } from './supabase.ts';
import { n8nRoutes } from './n8n.ts';
import { n8nOperationRoutes } from './n8n-operations.ts';
import { liveRoutes } from './live.ts';
import { endpointToolRoutes } from './endpoint-tools.ts';
import { transformationRoutes } from './transformations.ts';
import { portalSessionRoutes } from './portal-sessions.ts';
import { portalRoutes } from './portal.ts';
import { userLimitRoutes } from './user-limits.ts';

export type RouteModule = (app: FastifyInstance, services: ApiServices) => Promise<void>;

export const ROUTE_MODULES: RouteModule[] = [
  healthRoutes,
  eventRoutes,
  endpointRoutes,
  endpointToolRoutes,
  transformationRoutes,
  eventTypeRoutes,
  replayRoutes,
  userDataRoutes,
  organizationRoutes,
  auditLogRoutes,
  supabaseRoutes,
  n8nRoutes,
  n8nOperationRoutes,
  liveRoutes,
  portalSessionRoutes,
  portalRoutes,
  userLimitRoutes,
];
