/**
 * Which event a Supabase Database Webhook becomes, by table and operation. The seed's five tables map
 * exactly as the seed triggers do (the same SQL mappers run for both, see ledger/table-capture.ts);
 * SUPABASE_WEBHOOK_EVENT_MAP adds tables, or replaces a seed table's entry, with plain event types
 * whose data is the row.
 */
import type { SupabaseEventMap } from '../../config/config.ts';
import type { CaptureMapping, CaptureOperation } from '../../ledger/table-capture.ts';

export type SupabaseRoute = { mapping: CaptureMapping; eventType: string | null };
type TableRoutes = Partial<Record<CaptureOperation, SupabaseRoute>>;
export type EventRoutes = ReadonlyMap<string, TableRoutes>;

const seedIntegration: SupabaseRoute = { mapping: 'seed.integration', eventType: null };

/** The seed's triggers as ingress routes: same tables, same operations, same events. */
export const SEED_ROUTES: Readonly<Record<string, TableRoutes>> = {
  users: { INSERT: { mapping: 'seed.user', eventType: 'user.registered' } },
  agents: { INSERT: { mapping: 'seed.agent', eventType: 'agent.created' } },
  conversations: { INSERT: { mapping: 'seed.conversation', eventType: 'conversation.created' } },
  messages: { INSERT: { mapping: 'seed.message', eventType: 'conversation.message.added' } },
  external_integrations: { INSERT: seedIntegration, UPDATE: seedIntegration },
};

export function buildEventRoutes(custom: SupabaseEventMap): EventRoutes {
  const routes = new Map<string, TableRoutes>(Object.entries(SEED_ROUTES));
  for (const [table, ops] of Object.entries(custom)) {
    const entry: TableRoutes = {};
    for (const [op, eventType] of Object.entries(ops) as [CaptureOperation, string | undefined][]) {
      if (eventType) entry[op] = { mapping: 'row', eventType };
    }
    routes.set(table, entry);
  }
  return routes;
}

/** `schema.table` wins over a bare `table` entry, so one schema's table can be mapped differently. */
export function findRoute(routes: EventRoutes, schema: string, table: string, op: CaptureOperation): SupabaseRoute | null {
  const qualified = routes.get(`${schema}.${table}`);
  if (qualified) return qualified[op] ?? null;
  return routes.get(table)?.[op] ?? null;
}

/** "users: INSERT" lines for error messages, so a 422 says what would have been accepted. */
export function describeRoutes(routes: EventRoutes): string[] {
  return [...routes].map(([table, ops]) => `${table}: ${Object.keys(ops).join(', ')}`);
}
