/**
 * Builds a Carteiro process from its config: the ledger (migrated), Redis if configured, the
 * catalog, intake, background jobs and, for the worker role, the dispatcher. `dispose` undoes it
 * in reverse order. The HTTP server is built separately (api/app.ts), so tests can inject requests.
 */
import pino, { type Logger } from 'pino';
import type { Config } from '../config/config.ts';
import { openLedger } from '../ledger/connection.ts';
import { migrate } from '../ledger/migrate.ts';
import { createCatalog } from '../catalog/catalog.ts';
import { createEventIntake } from '../ledger/event-intake.ts';
import { createIngestService } from '../ingest/ingest-service.ts';
import { createSecretBox, parseKeyring } from '../crypto/secret-box.ts';
import { adminAuthenticator } from '../api/admin-authenticator.ts';
import { createBullmqJobRunner, createLocalJobRunner } from '../jobs/job-runner.ts';
import { createLocalLiveBus, createRedisLiveBus } from '../conveyor/live-bus.ts';
import { connectRedis } from '../conveyor/redis.ts';
import { createDispatcher } from '../worker/dispatcher.ts';
import { createHttpSender, type HttpSender } from '../delivery/http-sender.ts';
import { createSecretResolver } from '../worker/signing-secrets.ts';
import { OPEN_GATE } from '../worker/egress-gate.ts';
import { registerCoreJobs } from '../jobs/core-jobs.ts';
import { resolveKeys } from './local-keys.ts';
import { checkUrlShape } from '../delivery/destination.ts';
import type { Role, Services } from './services.ts';

export type Composed = { services: Services; generatedAdminKey: boolean; dispose(): Promise<void> };

export async function compose(config: Config, role: Role, opts: { log?: Logger } = {}): Promise<Composed> {
  const log = opts.log ?? pino({ level: config.logLevel, base: { role } });
  const keys = resolveKeys(config);
  const secretBox = createSecretBox(parseKeyring(keys.encryptionKeys));

  const ledger = await openLedger(config, { applicationName: `carteiro-${role}` });
  const applied = await migrate(ledger.sql, ledger.schema);
  if (applied.length) log.info({ applied, schema: ledger.schema }, 'migrations applied');

  const redis = config.redis.url ? connectRedis(config.redis.url) : null;
  redis?.on('error', (err) => log.warn({ err: err.message }, 'redis error'));
  const liveBus = config.redis.url && redis
    ? createRedisLiveBus(redis, config.redis.url, `${config.redis.prefix}:live:${ledger.schema}`)
    : createLocalLiveBus();
  const jobs = config.redis.url
    ? createBullmqJobRunner(config.redis.url, `${config.redis.prefix}:${ledger.schema}`, log)
    : createLocalJobRunner(log);

  const catalog = createCatalog(ledger.sql);
  const intake = createEventIntake(ledger.sql, { maxBatch: 1000, maxConcurrentCommits: Math.max(1, Math.floor(config.database.poolSize / 2)) });
  const ingest = createIngestService(catalog, intake);

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
    authenticate: adminAuthenticator(keys.adminKey),
    jobs,
    liveBus,
    dispatcher: null,
    adminKey: keys.adminKey,
    checkDestination: checkUrlShape,
  };

  registerCoreJobs(services);
  // Jobs run where work is done; without Redis there is no shared queue, so every process runs its own.
  if (role !== 'api' || !config.redis.url) await jobs.startProcessing();

  if (role !== 'api') {
    sender = createHttpSender({
      connectionsPerOrigin: config.delivery.connectionsPerOrigin,
      timeoutMs: config.delivery.retry.timeoutMs,
      responseBodyLimitBytes: config.delivery.responseBodyLimitBytes,
    });
    services.dispatcher = createDispatcher({
      config,
      ledger,
      sender,
      secrets: createSecretResolver(secretBox, config.keys.webhookSecret),
      gate: OPEN_GATE,
      log: log.child({ component: 'worker' }),
      onRecorded: (outcomes) =>
        liveBus.publish({ type: 'deliveries.recorded', count: outcomes.length, delivered: outcomes.filter((o) => o.success).length }),
    });
    await services.dispatcher.start();
  }

  return {
    services,
    generatedAdminKey: keys.generatedAdminKey,
    async dispose() {
      await services.dispatcher?.stop();
      await intake.drain();
      await jobs.close();
      await liveBus.close();
      await sender?.close();
      redis?.disconnect();
      await ledger.close();
    },
  };
}
