/**
 * Builds a Carteiro process from its config: the ledger (migrated), Redis if configured, the
 * catalog, intake, background jobs and, for the worker role, the dispatcher. `dispose` undoes it
 * in reverse order. The HTTP server is built separately (api/app.ts), so tests can inject requests.
 */
import type { Logger } from 'pino';
import { createLogger } from '../util/logger.ts';
import type { Config } from '../config/config.ts';
import { openLedger } from '../ledger/connection.ts';
import { migrate } from '../ledger/migrate.ts';
import { createCatalog } from '../catalog/catalog.ts';
import { createEventIntake } from '../ledger/event-intake.ts';
import { createIngestService } from '../ingest/ingest-service.ts';
import { createSecretBox, parseKeyring } from '../crypto/secret-box.ts';
import { adminAuthenticator } from '../tenancy/admin-authenticator.ts';
import { createBullmqJobRunner, createLocalJobRunner } from '../jobs/job-runner.ts';
import { createLocalLiveBus, createRedisLiveBus } from '../coordination/live-bus.ts';
import { connectRedis } from '../coordination/redis.ts';
import { createAcceptedAnnouncer } from '../coordination/accepted-events.ts';
import { createDispatcher } from '../worker/dispatcher.ts';
import { createHttpSender, type HttpSender } from '../delivery/http-sender.ts';
import { createStaticHeaderResolver } from '../worker/static-headers.ts';
import { createSecretResolver } from '../worker/signing-secrets.ts';
import { createTransformer } from '../delivery/transformation/transformer.ts';
import { createEgressGate } from '../worker/egress-rate-limit.ts';
import { createApiKeyAuthenticator } from '../tenancy/api-key-authenticator.ts';
import { createPortalSessionAuthenticator, firstAuthenticator } from '../tenancy/portal-sessions.ts';
import { createUserLimitsReader } from '../tenancy/user-limits.ts';
import { ledgerRoleSeesAllRows } from '../ledger/row-security.ts';
import { ConfigError } from '../config/config.ts';
import { registerCoreJobs } from '../jobs/core-jobs.ts';
import { resolveKeys } from './local-keys.ts';
import { createDestinationGuard, guardSender } from '../delivery/guard/guard.ts';
import { createDataProtection } from '../protection/data-protection.ts';
import { ensureOperationsEndpoint } from './operations-endpoint.ts';
import { registerRetentionJob, scheduleRetention } from '../jobs/retention-job.ts';
import { startAttemptPartitionUpkeep } from '../jobs/attempt-partition-upkeep.ts';
import { startStoredEventSealing } from '../jobs/stored-event-sealing.ts';
import { n8nHealthCheck, registerN8n, scheduleN8nDiscovery, signN8nWorkflows } from '../integrations/n8n/integration.ts';
import { createMetrics } from '../observability/metrics.ts';
import { startMetricsServer } from '../observability/metrics-http.ts';
import { createTracing } from '../observability/tracing.ts';
import type { Role, Services } from './services.ts';

/** Attempts listed in one `deliveries.recorded` live message at most (its counts cover them all). */
const LIVE_DELIVERIES_PER_MESSAGE = 200;

export type Composed = { services: Services; generatedAdminKey: boolean; dispose(): Promise<void> };

export type ComposeOptions = {
  log?: Logger;
  /** The worker stayed stalled after replacing its ledger pool (serve exits, for a supervisor to restart it). */
  onWorkerStalled?: (reason: string) => void;
};

export async function compose(config: Config, role: Role, opts: ComposeOptions = {}): Promise<Composed> {
  const log = opts.log ?? createLogger({ level: config.logLevel, format: config.logFormat, base: { role } });
  const keys = resolveKeys(config);
  const secretBox = createSecretBox(parseKeyring(keys.encryptionKeys));

  const ledger = await openLedger(config, { applicationName: `carteiro-${role}` });
  let applied: string[];
  try {
    applied = await migrate(ledger.sql, ledger.schema);
  } catch (err) {
    // A refused or failed migration (e.g. a schema newer than this code) must not leave the ledger open.
    await ledger.close();
    throw err;
  }
  if (applied.length) log.info({ applied, schema: ledger.schema }, 'migrations applied');
  // Row level security (migration 0004) binds every role but the owner: as anything else Carteiro would see no rows.
  const rls = await ledgerRoleSeesAllRows(ledger.sql);
  if (!rls.ok) {
    await ledger.close();
    throw new ConfigError(
      `database role "${rls.role}" neither owns Carteiro's tables (owner: "${rls.owner}") nor bypasses row level security, so it would see no rows; connect as the owner or GRANT "${rls.owner}" TO "${rls.role}" (docs/security.md)`,
    );
  }

  const redis = config.redis.url ? connectRedis(config.redis.url) : null;
  redis?.on('error', (err) => log.warn({ err: err.message }, 'redis error'));
  const liveBus =
    config.redis.url && redis ? createRedisLiveBus(redis, config.redis.url, `${config.redis.prefix}:live:${ledger.schema}`) : createLocalLiveBus();
  const jobs = config.redis.url ? createBullmqJobRunner(config.redis.url, `${config.redis.prefix}:${ledger.schema}`, log) : createLocalJobRunner(log);

  const metrics = createMetrics({
    sql: ledger.sql,
    role,
    log: log.child({ component: 'metrics' }),
    failingEndpoints: config.metrics.failingEndpoints,
    ledgerCacheMs: config.metrics.ledgerCacheMs,
  });
  // Off unless an OTLP endpoint is configured: then nothing below gets a tracer, and no span is made.
  const tracing = config.tracing ? createTracing(config.tracing, { role, log: log.child({ component: 'tracing' }) }) : null;
  if (config.tracing) log.info({ url: redactedUrl(config.tracing.tracesUrl), service: config.tracing.serviceName }, 'exporting traces');
  const catalog = createCatalog(ledger.sql, {
    validationDeadlineMs: config.ingress.schemaValidationTimeoutMs,
    compileDeadlineMs: config.ingress.schemaCompileTimeoutMs,
  });
  const apiKeys = createApiKeyAuthenticator(ledger.sql, log.child({ component: 'api-keys' }));
  const announceAccepted = createAcceptedAnnouncer(liveBus);
  const intake = createEventIntake(ledger.sql, {
    maxBatch: 1000,
    // Leave the pool room for everything else the API reads and writes.
    maxConcurrentCommits: Math.max(1, Math.min(config.ingress.concurrentCommits, config.database.poolSize - 1)),
    wakeChannel: `${ledger.schema}_dispatch`,
    onCommitted: metrics.committed,
  });
  const dataProtection = createDataProtection(secretBox, { piiFields: config.dataProtection.piiFields });
  const destinations = createDestinationGuard({ allow: config.delivery.allowPrivateNetworks });
  const ingest = createIngestService(catalog, intake, {
    serializeData: dataProtection.sealData,
    // Live updates (dashboard): new events, after their commit; duplicates stored nothing new.
    onAccepted: (organizationId, results) => {
      metrics.accepted(results);
      announceAccepted(organizationId, results.filter((r) => !r.duplicate).length);
    },
  });

  // Its threads start on first use: a process whose endpoints have no transformation never starts one.
  const transformer = createTransformer(config.transformations);
  let sender: HttpSender | null = null;
  const services: Services = {
    config,
    role,
    log,
    ledger,
    redis,
    catalog,
    intake,
    ingest,
    secretBox,
    // Portal session tokens are accepted only by the portal's routes (api/auth-hook.ts).
    authenticate: adminAuthenticator(keys.adminKey, firstAuthenticator(apiKeys.authenticate, createPortalSessionAuthenticator(ledger.sql))),
    apiKeys,
    userLimits: createUserLimitsReader(ledger.sql, config.users),
    jobs,
    liveBus,
    dispatcher: null,
    adminKey: keys.adminKey,
    checkDestination: destinations.checkUrl,
    dataProtection,
    transformer,
    metrics,
    metricsServer: null,
    tracing,
    healthChecks: [n8nHealthCheck(config.n8n)],
  };

  registerCoreJobs(services);
  registerRetentionJob(services);
  registerN8n(services);
  // Jobs run where work is done; without Redis there is no shared queue, so every process runs its own.
  // With Redis, starting them and their schedules waits for Redis (BullMQ queues its commands until it
  // answers): that happens beside the rest, never before it, so a process started while Redis is down
  // delivers and serves at once and its jobs begin when Redis is back.
  const startJobs = async () => {
    if (role !== 'api' || !config.redis.url) await jobs.startProcessing();
    await scheduleRetention(services);
    await scheduleN8nDiscovery(services);
  };
  if (config.redis.url) void startJobs().catch((err) => log.error({ err }, 'starting background jobs failed'));
  else await startJobs();
  // The attempt log's partitions ahead, where attempts are written (and wherever jobs run).
  const stopPartitionUpkeep = role !== 'api' || !config.redis.url ? await startAttemptPartitionUpkeep(services) : () => {};
  await signN8nWorkflows(services);
  await ensureOperationsEndpoint(services);

  if (role !== 'api') {
    // SSRF guard at connect time: blocked DNS answers are dropped; blocked IP-literal hosts never sent to.
    sender = guardSender(
      createHttpSender({
        connectionsPerOrigin: config.delivery.connectionsPerOrigin,
        timeoutMs: config.delivery.retry.timeoutMs,
        connectTimeoutMs: config.delivery.connectTimeoutMs,
        responseBodyLimitBytes: config.delivery.responseBodyLimitBytes,
        connect: { lookup: destinations.lookup },
      }),
      destinations,
    );
    services.dispatcher = createDispatcher({
      config,
      ledger,
      sender,
      secrets: createSecretResolver(secretBox, config.keys.webhookSecret),
      staticHeaders: createStaticHeaderResolver(secretBox),
      gate: createEgressGate({ redis, keyPrefix: `${config.redis.prefix}:${ledger.schema}:egress`, log }),
      log: log.child({ component: 'worker' }),
      prepareData: dataProtection.prepareDispatchData,
      transformer,
      sealResponseBody: dataProtection.sealResponseBody,
      metrics,
      ...(tracing ? { tracing } : {}),
      ...(opts.onWorkerStalled ? { onStalled: opts.onWorkerStalled } : {}),
      // One message per organization in the batch, so each tenant's live stream sees only its own.
      onRecorded: (outcomes) => {
        const byOrg = Map.groupBy(outcomes, (o) => o.organizationId);
        for (const [organizationId, list] of byOrg) {
          liveBus.publish({
            type: 'deliveries.recorded',
            organization_id: organizationId,
            count: list.length,
            delivered: list.filter((o) => o.success).length,
            // Each attempt, for followers such as `carteiro tail` (capped: a message stays small).
            deliveries: list
              .filter((o) => o.attempted)
              .slice(0, LIVE_DELIVERIES_PER_MESSAGE)
              .map((o) => ({
                event_id: o.eventId,
                endpoint_id: o.endpointId,
                attempt: o.attemptNumber,
                success: o.success,
                status_code: o.statusCode,
                duration_ms: o.durationMs,
                error: o.error,
                next_status: o.nextStatus,
              })),
          });
        }
      },
    });
    const dispatcher = services.dispatcher;
    metrics.watchWorker(() => dispatcher.stats());
    await services.dispatcher.start();
  }
  // Personal fields of events written straight into the database, sealed (and the events announced)
  // where deliveries are made.
  const stopSealing = role !== 'api' ? startStoredEventSealing(services, announceAccepted) : async () => {};

  async function dispose(): Promise<void> {
    await services.metricsServer?.close();
    stopPartitionUpkeep();
    await stopSealing();
    await services.dispatcher?.stop();
    await intake.drain();
    await catalog.close();
    await jobs.close();
    await liveBus.close();
    await sender?.close();
    await transformer.close();
    // After the worker and the intake: their last spans have ended, and are sent now.
    await tracing?.shutdown().catch((err: unknown) => log.warn({ err }, 'flushing trace spans at shutdown failed'));
    redis?.disconnect();
    await ledger.close();
  }

  // Metrics on a listener of their own: the only way to scrape a worker-only process.
  if (config.metrics.port !== undefined) {
    try {
      services.metricsServer = await startMetricsServer(metrics, {
        host: config.metrics.host,
        port: config.metrics.port,
        metricsKey: config.metrics.key,
        adminKey: keys.adminKey,
        log,
      });
      log.info({ url: services.metricsServer.url }, 'metrics listening');
    } catch (err) {
      await dispose().catch(() => {});
      throw err;
    }
  }

  return { services, generatedAdminKey: keys.generatedAdminKey, dispose };
}

/** A URL for the log: no user or password, no query string (either may hold a key). */
function redactedUrl(url: string): string {
  const u = new URL(url);
  return `${u.protocol}//${u.host}${u.pathname}`;
}
