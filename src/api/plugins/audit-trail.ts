/**
 * The audit trail: every management action through the API — who (the admin key or which
 * organization key), what (action, route, target, outcome), when, and from where (IP, user agent).
 *
 * One onSend hook covers every mutating route, present and future, so a new route is audited without
 * remembering to be: POST, PUT, PATCH and DELETE by an authenticated caller. Event ingestion is data,
 * not management, and is left out (INGESTION_ROUTES; or `config: { audit: false }` on a route). A
 * route may name its action (`config: { auditAction }`); otherwise it is derived from the route,
 * e.g. POST /endpoints/:id/rotate-secret → endpoints.rotate-secret.
 *
 * Recorded: what was done (2xx/3xx), what was refused at a target (403, 404: probing with a valid
 * key is worth seeing) and what failed on our side (5xx: it may have half happened). Malformed requests (400, 413, 415, 422) and throttled ones (429) change
 * nothing and would only let a noisy client flood the log. The row is written before the response
 * leaves, so a client that has its answer can find the entry; a failed write is logged, not thrown:
 * the action itself has already happened.
 *
 * A path parameter that names a person (`config: { auditPseudonymParam: 'user_id' }`) is recorded
 * only as its pseudonym (protection/erasure-pseudonym.ts), in the target and in the path, and as the
 * entry's subject (subject_user): the user may be erased, and the log must then hold nothing that
 * re-identifies them.
 */
import type { FastifyInstance, FastifyRequest, FastifyReply } from 'fastify';
import type { ApiServices } from '../api-services.ts';
import { insertAuditEntry, replaceRouteParam, type AuditEntry } from '../../ledger/audit-log.ts';
import { userPseudonymizer, type Pseudonymizer } from '../../protection/erasure-pseudonym.ts';

/** What this module uses of the API's services. */
type AuditTrailDeps = Pick<ApiServices, 'adminKey' | 'ledger'>;

declare module 'fastify' {
  interface FastifyContextConfig {
    /** false: not a management action (not audited). */
    audit?: boolean;
    /** The action's name in the audit log, e.g. "organizations.keys.create". */
    auditAction?: string;
    /** A path parameter naming a person (a user id): recorded only as its pseudonym. */
    auditPseudonymParam?: string;
  }
  interface FastifyRequest {
    /**
     * What a request was refused at before the tenant was known, set by the hook that refused it
     * (an organization named in X-Organization-Id that does not exist); the target of its entry.
     */
    auditTargetId: string | null;
  }
}

const MUTATING = new Set(['POST', 'PUT', 'PATCH', 'DELETE']);
const INGESTION_ROUTES = new Set(['/trigger', '/events/batch', '/events/:name']);
const PAYLOAD_SCAN_LIMIT_BYTES = 64 * 1024;
const USER_AGENT_MAX = 512;
const PATH_MAX = 2048;

/** endpoints.create, endpoints.update, endpoints.delete, endpoints.enable, events.replay, replay.create … */
export function auditActionFor(method: string, route: string): string {
  const segments = route.split('/').filter(Boolean);
  const names = segments.filter((s) => !s.startsWith(':'));
  const last = segments[segments.length - 1] ?? '';
  const afterParam = segments.length >= 2 && (segments[segments.length - 2] ?? '').startsWith(':');
  if (last.startsWith(':')) {
    const verb = method === 'DELETE' ? 'delete' : method === 'POST' ? 'create' : 'update';
    return [...names, verb].join('.');
  }
  if (afterParam && method === 'POST') return names.join('.');
  const verb = method === 'POST' ? 'create' : method === 'DELETE' ? 'delete' : 'update';
  return [...names, verb].join('.');
}

function shouldRecord(status: number): boolean {
  return status < 400 || status === 403 || status === 404 || status >= 500;
}

/** Ids from a JSON response body (what was created), without keeping anything else of it. */
function idsFromPayload(reply: FastifyReply, payload: unknown): { id?: string; organizationId?: string } {
  if (typeof payload !== 'string' || payload.length > PAYLOAD_SCAN_LIMIT_BYTES) return {};
  if (!String(reply.getHeader('content-type') ?? '').includes('json')) return {};
  try {
    const body = JSON.parse(payload) as Record<string, unknown> | null;
    if (!body || typeof body !== 'object') return {};
    const pick = (...keys: string[]) => keys.map((k) => body[k]).find((v): v is string => typeof v === 'string');
    const out: { id?: string; organizationId?: string } = {};
    const id = pick('id', 'job_id', 'event_id');
    if (id !== undefined) out.id = id;
    const org = pick('organization_id');
    if (org !== undefined) out.organizationId = org;
    return out;
  } catch {
    return {};
  }
}

export function auditEntryFor(request: FastifyRequest, reply: FastifyReply, payload: unknown, prefix: string, pseudonymize: Pseudonymizer): AuditEntry | null {
  const tenant = request.tenant;
  const config = request.routeOptions.config;
  const fullRoute = request.routeOptions.url;
  if (!tenant || !fullRoute || !MUTATING.has(request.method) || config?.audit === false) return null;
  const route = fullRoute.startsWith(prefix) ? fullRoute.slice(prefix.length) || '/' : fullRoute;
  if (INGESTION_ROUTES.has(route) || !shouldRecord(reply.statusCode)) return null;

  const params = (request.params ?? {}) as Record<string, unknown>;
  const fromBody = reply.statusCode < 300 ? idsFromPayload(reply, payload) : {};
  const principal = tenant.principal;
  // The organization acted on: named in the path, or the one just created.
  const orgParam = route.startsWith('/organizations/:id') && typeof params.id === 'string' ? params.id : route === '/organizations' ? fromBody.id : undefined;
  const lastParam = Object.values(params)
    .filter((v): v is string => typeof v === 'string')
    .at(-1);
  const targetId = request.auditTargetId ?? (route.split('/').at(-1)?.startsWith(':') ? lastParam : undefined) ?? fromBody.id ?? lastParam ?? null;
  const path = request.url.split('?')[0] ?? '';
  // A person's id (auditPseudonymParam) is replaced by its pseudonym wherever it would appear.
  const person = config?.auditPseudonymParam !== undefined ? params[config.auditPseudonymParam] : undefined;
  const hidden =
    typeof person === 'string' && config?.auditPseudonymParam !== undefined
      ? { param: config.auditPseudonymParam, id: person, pseudonym: pseudonymize(person) }
      : null;
  const userAgent = request.headers['user-agent'];
  return {
    organizationId: principal.kind !== 'admin' ? principal.organizationId : (orgParam ?? tenant.readOrganizationId ?? fromBody.organizationId ?? null),
    actorKind: principal.kind,
    // A portal session's id stands where a key's would: the session, not the user id, so an erased
    // user's entries hold nothing that names them once the session is gone (ledger/erasure.ts).
    actorKeyId: principal.kind === 'organization' ? principal.keyId : principal.kind === 'portal' ? principal.sessionId : null,
    actorOrganizationId: principal.kind === 'admin' ? null : principal.organizationId,
    action: config?.auditAction ?? auditActionFor(request.method, route),
    method: request.method,
    route: fullRoute,
    path: (hidden ? replaceRouteParam(fullRoute, path, hidden.param, hidden.id, hidden.pseudonym) : path).slice(0, PATH_MAX),
    targetId: hidden && targetId === hidden.id ? hidden.pseudonym : targetId,
    // The field an erasure goes by (ledger/audit-log.ts): never a match on path text.
    subjectUser: hidden?.pseudonym ?? null,
    statusCode: reply.statusCode,
    ip: request.ip ?? null,
    userAgent: typeof userAgent === 'string' ? userAgent.slice(0, USER_AGENT_MAX) : null,
    requestId: String(request.id),
  };
}

export function registerAuditTrail(app: FastifyInstance, services: AuditTrailDeps, prefix: string): void {
  const pseudonymize = userPseudonymizer(services.adminKey);
  app.decorateRequest('auditTargetId', null);
  app.addHook('onSend', async (request, reply, payload) => {
    const entry = auditEntryFor(request, reply, payload, prefix, pseudonymize);
    if (entry) {
      try {
        await insertAuditEntry(services.ledger.sql, entry);
      } catch (err) {
        request.log.error({ err, action: entry.action }, 'could not write the audit log entry');
      }
    }
    return payload;
  });
}
