/**
 * Everything a Carteiro process is made of, built once by compose.ts and passed down. The layers below
 * take only what they use: the API its ApiServices (api/api-services.ts), each job, integration and
 * check its own few fields; this type is the union the composition root holds.
 */
import type { ApiServices } from '../api/api-services.ts';
import type { EventIntake } from '../ledger/event-intake.ts';
import type { Dispatcher } from '../worker/dispatcher.ts';
import type { MetricsServer } from '../observability/metrics-http.ts';

export type Role = 'all' | 'api' | 'worker';

export type Services = ApiServices & {
  role: Role;
  intake: EventIntake;
  /** The worker running in this process, if any. */
  dispatcher: Dispatcher | null;
  /** The metrics listener of its own (CARTEIRO_METRICS_PORT), when configured. */
  metricsServer: MetricsServer | null;
};
