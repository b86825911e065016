/**
 * Builds the HTTP API (does not listen): Fastify with JSON-schema routes under /api/webhooks,
 * bearer-key auth on everything but health and the API description, and one error handler.
 */
import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import { Ajv } from 'ajv';
import type { ApiServices } from './api-services.ts';
import { errorHandler, fromRouterError, toErrorBody } from './error-handler.ts';
import { answerExpectContinue } from './oversized-body.ts';
import { registerAuth } from './auth-hook.ts';
import { registerAnswerDeadline } from './answer-deadline.ts';
import { ROUTE_MODULES } from './routes/index.ts';
import { BodyTooLargeError, NotFoundError } from '../errors/errors.ts';
import { registerIngressLimit } from './plugins/ingress-limit.ts';
import { registerUserIngressLimit } from './plugins/user-ingress-limit.ts';
import { registerAuditTrail } from './plugins/audit-trail.ts';
import { registerInputHardening } from './plugins/hardening/input-hardening.ts';
import { dashboardRoutes } from '../dashboard/routes.ts';
import { portalPageRoutes } from '../dashboard/portal.ts';
import { addIdNormalization } from './id-normalization.ts';
import { redactedRequest } from '../protection/log-redaction.ts';
import { registerMetricsRoute } from '../observability/metrics-http.ts';
import { registerIngestTracing } from '../observability/tracing-http.ts';
import { documentRoute, errorEnvelope } from './openapi-docs.ts';

export const API_PREFIX = '/api/webhooks';
const DOCS_PREFIX = '/docs';
const IDLE_SOCKET_TIMEOUT_MS = 30_000;
export const MAX_HEADER_BYTES = 16 * 1024;
/** Fastify's default, named so the error for a longer path parameter can state it. */
const MAX_PARAM_LENGTH = 100;

/** Fastify's per-request lines, at debug instead of info; a request that failed stays at error. */
class DebugRequestLog extends LogController {
  override incomingRequest(request: FastifyRequest): void {
    if (!this.isLogDisabled(request)) request.log.debug({ req: request }, 'incoming request');
  }
  override requestCompleted(error: Error | null, request: FastifyRequest, reply: FastifyReply): void {
    if (this.isLogDisabled(request)) return;
    if (error) reply.log.error({ res: reply, err: error, responseTime: reply.elapsedTime }, 'request errored');
    else reply.log.debug({ res: reply, responseTime: reply.elapsedTime }, 'request completed');
  }
  override routeNotFound(request: FastifyRequest): void {
    if (!this.isLogDisabled(request)) request.log.debug({ req: request }, 'route not found');
  }
}

export async function buildApp(services: ApiServices): Promise<FastifyInstance> {
  const { config } = services;
  // Filled as routes are added (onRoute below): lets a router error name the parameter it refused.
  const routePaths: string[] = [];
  const app = Fastify({
    // Request lines carry the URL: its query string is redacted (keys, user ids; protection/log-redaction.ts).
    loggerInstance: services.log.child({ component: 'api' }, { serializers: { req: redactedRequest } }) as FastifyBaseLogger,
    bodyLimit: config.http.bodyLimitBytes,
    // Slow or stalled clients are cut off instead of holding sockets forever.
    requestTimeout: config.http.requestTimeoutMs,
    connectionTimeout: IDLE_SOCKET_TIMEOUT_MS,
    // Node checks request and header deadlines only every connectionsCheckingInterval (30 s by
    // default): check often enough that a trickling client is cut off near its deadline.
    http: {
      maxHeaderSize: MAX_HEADER_BYTES,
      headersTimeout: config.http.requestTimeoutMs,
      connectionsCheckingInterval: Math.max(100, Math.min(5_000, Math.floor(config.http.requestTimeoutMs / 4))),
    },
    // The client's address (audit log, logs) from X-Forwarded-For only when its sender is trusted.
    trustProxy: config.http.trustProxy,
    onProtoPoisoning: 'error',
    onConstructorPoisoning: 'error',
    return503OnClosing: true,
    // Fastify logs every request twice at info: Carteiro at debug (LOG_LEVEL=debug shows them).
    logController: new DebugRequestLog(),
    routerOptions: { maxParamLength: MAX_PARAM_LENGTH },
    // A malformed percent-escape or an over-long parameter is refused by the router before any route
    // runs; without this Fastify answers in its own shape, outside the error envelope.
    frameworkErrors: (err, request, reply) => {
      errorHandler(fromRouterError(err, request.url, routePaths, MAX_PARAM_LENGTH), request, reply);
    },
  });
  // An oversized body announced with Expect: 100-continue is refused before it is sent.
  answerExpectContinue(app.server, config.http.bodyLimitBytes, () => {
    const { body } = toErrorBody(new BodyTooLargeError(config.http.bodyLimitBytes));
    return { status: body.statusCode, text: JSON.stringify(body) };
  });
  app.addHook('onRoute', (route) => {
    routePaths.push(route.url);
    // Summary, auth, examples and response schemas (api/openapi-docs.ts): the description, and how
    // responses are serialized.
    documentRoute(route, API_PREFIX);
    // The docs page and its assets are public, like the document they read.
    if (route.url === DOCS_PREFIX || route.url.startsWith(`${DOCS_PREFIX}/`)) route.config = { ...route.config, public: true };
  });
  app.addSchema(errorEnvelope);

  // Bodies are checked strictly: a wrong type is an error, never silently coerced, and unknown
  // fields are rejected where a schema closes its object. Query strings and path params are text,
  // so there a number written as "10" is coerced.
  const bodyAjv = new Ajv({ removeAdditional: false, coerceTypes: false, useDefaults: true, allErrors: false, strict: false });
  const queryAjv = new Ajv({ removeAdditional: false, coerceTypes: 'array', useDefaults: true, allErrors: false, strict: false });
  for (const ajv of [bodyAjv, queryAjv]) addIdNormalization(ajv);
  app.setValidatorCompiler(({ schema, httpPart }) => (httpPart === 'body' ? bodyAjv : queryAjv).compile(schema));

  // A POST without a body (curl -X POST …/enable) means "no options": validate it as {}.
  app.addHook('preValidation', async (request) => {
    if (request.body === undefined && request.routeOptions.schema?.body) request.body = {};
  });

  app.setErrorHandler((err, request, reply) => {
    const body = errorHandler(err, request, reply);
    if (request.routeOptions.config?.ingest) {
      services.metrics.refused(body.code);
      request.ingestTrace?.refused(body.code);
    }
  });
  // Before every other hook (auth reads the ledger too): the deadline runs from arrival.
  registerAnswerDeadline(app, config.http.answerDeadlineMs);
  // Next, so an ingest request's span covers its authentication and limits too.
  if (services.tracing) registerIngestTracing(app, services.tracing);
  // A block, not an expression: errorHandler returns the body it sent, and a handler that returns a
  // value has Fastify send it again.
  app.setNotFoundHandler((request, reply) => {
    errorHandler(new NotFoundError('route', `${request.method} ${request.url.split('?')[0]}`), request, reply);
  });

  await app.register(swagger, {
    openapi: {
      openapi: '3.1.0',
      info: {
        title: 'Carteiro',
        version: '0.1.0',
        description: 'Webhook delivery: events in, signed webhooks out. Every error answers with one envelope (ErrorEnvelope).',
      },
      components: {
        securitySchemes: {
          bearer: { type: 'http', scheme: 'bearer', description: 'An organization API key, or the admin key (CARTEIRO_ADMIN_KEY).' },
          supabaseSecret: { type: 'apiKey', in: 'header', name: 'X-Supabase-Webhook-Secret' },
        },
      },
      security: [{ bearer: [] }],
    },
    // Shared schemas keep their own names (components.schemas.ErrorEnvelope) instead of def-0.
    refResolver: { buildLocalReference: (json, _baseUri, _fragment, i) => (typeof json.$id === 'string' ? json.$id : `def-${i}`) },
  });
  // The interactive description at /docs, public like the document it reads.
  await app.register(swaggerUi, { routePrefix: DOCS_PREFIX, uiConfig: { persistAuthorization: true } });
  registerInputHardening(app);
  registerAuth(app, services);
  registerIngressLimit(app, services);
  registerUserIngressLimit(app, services, services.userLimits);
  registerAuditTrail(app, services, API_PREFIX);

  for (const mod of ROUTE_MODULES) await app.register(async (scope) => mod(scope, services), { prefix: API_PREFIX });
  app.get(`${API_PREFIX}/openapi.json`, { config: { public: true }, schema: { hide: true } }, async () => app.swagger());
  registerMetricsRoute(app, services.metrics, { adminKey: services.adminKey, metricsKey: config.metrics.key });
  await dashboardRoutes(app);
  await portalPageRoutes(app, { frameAncestors: config.portal.frameAncestors });
  // The root leads somewhere: a browser to the dashboard, anything else to an index of where things are.
  app.get('/', { config: { public: true }, schema: { hide: true } }, async (request, reply) => {
    if ((request.headers.accept ?? '').includes('text/html')) return reply.redirect('/dashboard');
    return {
      name: 'Carteiro',
      dashboard: '/dashboard',
      docs: DOCS_PREFIX,
      openapi: `${API_PREFIX}/openapi.json`,
      api: API_PREFIX,
      health: `${API_PREFIX}/health`,
    };
  });
  return app;
}
