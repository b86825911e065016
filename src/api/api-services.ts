/**
 * What the HTTP API is given by the process that serves it (runtime/compose.ts builds it). Each route
 * module and plugin takes the few of these it uses (a `Pick`), so what a part of the API may touch is
 * written at its door.
 */
import type { Logger } from 'pino';
import type { Redis } from 'ioredis';
import type { Config } from '../config/config.ts';
import type { Ledger } from '../ledger/connection.ts';
import type { Catalog } from '../catalog/catalog.ts';
import type { IngestService } from '../ingest/ingest-service.ts';
import type { SecretBox } from '../crypto/secret-box.ts';
import type { Authenticator } from '../tenancy/principal.ts';
import type { ApiKeyAuthenticator } from '../tenancy/api-key-authenticator.ts';
import type { UserLimitsReader } from '../tenancy/user-limits.ts';
import type { JobRunner } from '../jobs/job-runner.ts';
import type { LiveBus } from '../coordination/live-bus.ts';
import type { DataProtection } from '../protection/data-protection.ts';
import type { Metrics } from '../observability/metrics.ts';
import type { Transformer } from '../delivery/transformation/transformer.ts';
import type { Tracing } from '../observability/tracing.ts';
import type { HealthCheck } from '../observability/health.ts';

export type ApiServices = {
  config: Config;
  log: Logger;
  ledger: Ledger;
  redis: Redis | null;
  catalog: Catalog;
  ingest: IngestService;
  secretBox: SecretBox;
  authenticate: Authenticator;
  /** Organization API keys: lookup cache and last-used tracking (forget a key after revoking it). */
  apiKeys: ApiKeyAuthenticator;
  /** Limits per user id, resolved (override, organization default, server default) and cached for ingestion. */
  userLimits: UserLimitsReader;
  jobs: JobRunner;
  liveBus: LiveBus;
  /** Whether a worker runs in this process (/health counts it as alive without a heartbeat). */
  dispatcher: object | null;
  adminKey: string;
  /** Throws UnsafeDestinationError for a URL webhooks must not be sent to, naming `field` (default `url`). */
  checkDestination: (url: string, field?: string) => Promise<void>;
  /** Personal fields of event data sealed at rest; `reveal` opens them for display. */
  dataProtection: DataProtection;
  /** Endpoints' transformations: checked when written, previewed, applied by the worker (docs/transformations.md). */
  transformer: Transformer;
  /** This process's Prometheus metrics (observability/metrics.ts). */
  metrics: Metrics;
  /** OpenTelemetry traces (observability/tracing.ts); null when no OTLP endpoint is configured. */
  tracing: Tracing | null;
  /** Checks beside the core's in /health (n8n's reachability), added by the integrations that run. */
  healthChecks: readonly HealthCheck[];
};
