/** Everything a Carteiro process is made of, built once by compose.ts and passed down. */
import type { Logger } from 'pino';
import type { Redis } from 'ioredis';
import type { Config } from '../config/config.ts';
import type { Ledger } from '../ledger/connection.ts';
import type { Catalog } from '../catalog/catalog.ts';
import type { IngestService } from '../ingest/ingest-service.ts';
import type { SecretBox } from '../crypto/secret-box.ts';
import type { Authenticator } from '../api/tenant.ts';
import type { ApiKeyAuthenticator } from '../security/tenancy/api-keys.ts';
import type { UserLimitsReader } from '../security/tenancy/user-limits.ts';
import type { JobRunner } from '../jobs/job-runner.ts';
import type { LiveBus } from '../conveyor/live-bus.ts';
import type { Dispatcher } from '../worker/dispatcher.ts';
import type { EventIntake } from '../ledger/event-intake.ts';
import type { DataProtection } from '../security/data-protection.ts';
import type { Metrics } from '../observability/metrics.ts';
import type { MetricsServer } from '../observability/metrics-http.ts';
import type { Transformer } from '../delivery/transformation/transformer.ts';
import type { Tracing } from '../observability/tracing.ts';

export type Role = 'all' | 'api' | 'worker';

export type Services = {
  config: Config;
  role: Role;
  log: Logger;
  ledger: Ledger;
  redis: Redis | null;
  catalog: Catalog;
  intake: EventIntake;
  ingest: IngestService;
  secretBox: SecretBox;
  authenticate: Authenticator;
  /** Organization API keys: lookup cache and last-used tracking (forget a key after revoking it). */
  apiKeys: ApiKeyAuthenticator;
  /** Limits per user id, resolved (override, organization default, server default) and cached for ingestion. */
  userLimits: UserLimitsReader;
  jobs: JobRunner;
  liveBus: LiveBus;
  /** The worker running in this process, if any. */
  dispatcher: Dispatcher | null;
  adminKey: string;
  /** Throws UnsafeDestinationError for a URL webhooks must not be sent to, naming `field` (default `url`). */
  checkDestination: (url: string, field?: string) => Promise<void>;
  /** Personal fields of event data sealed at rest; `reveal` opens them for display. */
  dataProtection: DataProtection;
  /** Endpoints' transformations: checked when written, previewed, applied by the worker (docs/transformations.md). */
  transformer: Transformer;
  /** This process's Prometheus metrics (observability/metrics.ts). */
  metrics: Metrics;
  /** The metrics listener of its own (CARTEIRO_METRICS_PORT), when configured. */
  metricsServer: MetricsServer | null;
  /** OpenTelemetry traces (observability/tracing.ts); null when no OTLP endpoint is configured. */
  tracing: Tracing | null;
};
