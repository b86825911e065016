/**
 * carteiro triggers <add|remove|list|install-seed|uninstall-seed>: table capture from the command
 * line (docs/triggers.md). Each run opens the ledger, applies pending migrations (the capture functions
 * live there) and calls the SQL API through ledger/table-capture.ts.
 *
 * Embedded mode: the data folder is locked by the process that has it open (ledger/data-folder-lock.ts),
 * so while `carteiro start` runs this refuses, naming its PID: stop it first.
 */
import type { Config } from '../config/config.ts';
import { CONSOLE, parseAction, UsageError, wantsHelp, type CliCommand, type OptionValues, type Output } from './sub-command.ts';
import { openLedger, type Sql } from '../ledger/connection.ts';
import { migrate } from '../ledger/migrate.ts';
import {
  CAPTURE_OPERATIONS,
  captureTable,
  installSeedTriggers,
  listCaptures,
  uncaptureTable,
  uninstallSeedTriggers,
  type CaptureOperation,
} from '../ledger/table-capture.ts';
import { CarteiroError } from '../errors/errors.ts';

export const TRIGGERS_USAGE = `usage:
  carteiro triggers add --table T (--event E | --mapper 'schema.fn(text,jsonb,jsonb)') [--on insert,update,delete]
                        [--schema public] [--columns a,b] [--name N] [--organization UUID] [--priority normal|high]
                        [--record-id-column id] [--user-id-column user_id]
      E may contain {op}: "order.{op}" gives order.created / order.updated / order.deleted
  carteiro triggers remove --table T [--schema public] [--name N]
  carteiro triggers list [--json]
  carteiro triggers install-seed [--schema public] [--organization UUID]
  carteiro triggers uninstall-seed [--schema public]`;

const OPTIONS = {
  table: { type: 'string' },
  schema: { type: 'string' },
  event: { type: 'string' },
  on: { type: 'string' },
  columns: { type: 'string' },
  name: { type: 'string' },
  organization: { type: 'string' },
  priority: { type: 'string' },
  'record-id-column': { type: 'string' },
  'user-id-column': { type: 'string' },
  mapper: { type: 'string' },
  json: { type: 'boolean' },
} as const;

type Values = OptionValues<typeof OPTIONS>;

export const triggersCommand: CliCommand = {
  name: 'triggers',
  usage: TRIGGERS_USAGE,
  run: (config, args) => runTriggers(config, args, CONSOLE),
};

/** The command with its output injectable (tests). Exit codes: 0 done, 1 refused by the ledger, 2 usage. */
export async function runTriggers(config: Config, args: string[], io: Output): Promise<number> {
  if (wantsHelp(args)) {
    io.out(TRIGGERS_USAGE);
    return 0;
  }
  let action: string;
  let values: Values;
  try {
    ({ action, values } = parseAction(args, OPTIONS, ACTIONS));
  } catch (err) {
    io.err(`${(err as Error).message}\n${TRIGGERS_USAGE}`);
    return 2;
  }
  const ledger = await openLedger(config, { poolSize: 1, applicationName: 'carteiro-triggers' });
  try {
    await migrate(ledger.sql, ledger.schema);
    await (ACTIONS[action] as Action)(ledger.sql, values, io);
    return 0;
  } catch (err) {
    if (err instanceof UsageError) {
      io.err(`${err.message}\n${TRIGGERS_USAGE}`);
      return 2;
    }
    if (err instanceof CarteiroError) {
      io.err(`carteiro triggers ${action}: ${err.message}`);
      return 1;
    }
    throw err;
  } finally {
    await ledger.close();
  }
}

type Action = (sql: Sql, v: Values, io: Output) => Promise<void>;

const ACTIONS: Record<string, Action> = {
  async add(sql, v, io) {
    const table = required(v.table, '--table');
    if (!v.event && !v.mapper) throw new UsageError('add needs --event (or --mapper)');
    if (v.priority !== undefined && v.priority !== 'normal' && v.priority !== 'high') throw new UsageError('--priority is normal or high');
    const capture = await captureTable(sql, {
      table,
      schema: v.schema,
      eventType: v.event ?? null,
      operations: parseOperations(v.on ?? 'insert'),
      columns: v.columns ? list(v.columns) : null,
      organizationId: v.organization ?? null,
      triggerName: v.name ?? null,
      priority: v.priority,
      recordIdColumn: v['record-id-column'],
      userIdColumn: v['user-id-column'],
      mapping: v.mapper ? 'function' : 'row',
      mapper: v.mapper ?? null,
    });
    io.out(
      `captured ${capture.schema_name}.${capture.table_name} (${capture.operations.join(', ')}) as ${capture.event_type ?? capture.mapper}: trigger ${capture.trigger_name}`,
    );
  },

  async remove(sql, v, io) {
    const table = required(v.table, '--table');
    const removed = await uncaptureTable(sql, { table, schema: v.schema, triggerName: v.name ?? null });
    io.out(
      removed
        ? `removed ${removed} capture(s) from ${v.schema ?? 'public'}.${table}`
        : `no capture on ${v.schema ?? 'public'}.${table}${v.name ? ` named ${v.name}` : ''}`,
    );
  },

  async list(sql, v, io) {
    const captures = await listCaptures(sql);
    if (v.json) {
      io.out(JSON.stringify(captures, null, 2));
      return;
    }
    if (!captures.length) {
      io.out('no captures');
      return;
    }
    for (const c of captures) {
      const what =
        c.mapping === 'row' ? c.event_type : c.mapping === 'function' ? `mapper ${c.mapper}` : `${c.mapping}${c.event_type ? ` (${c.event_type})` : ''}`;
      const extras = [
        c.columns ? `columns ${c.columns.join(',')}` : '',
        c.organization_id ? `organization ${c.organization_id}` : '',
        c.attached ? '' : 'DETACHED: its trigger is gone',
      ].filter(Boolean);
      io.out(`${c.schema_name}.${c.table_name}  ${c.trigger_name}  ${c.operations.join(',')}  → ${what}${extras.length ? `  [${extras.join('; ')}]` : ''}`);
    }
  },

  async 'install-seed'(sql, v, io) {
    const results = await installSeedTriggers(sql, { schema: v.schema, organizationId: v.organization ?? null });
    for (const r of results)
      io.out(`${r.installed ? 'installed' : 'skipped  '} ${r.trigger_name} on ${v.schema ?? 'public'}.${r.table_name}${r.installed ? '' : ' (no such table)'}`);
  },

  async 'uninstall-seed'(sql, v, io) {
    io.out(`removed ${await uninstallSeedTriggers(sql, { schema: v.schema })} seed trigger(s)`);
  },
};

function required(value: string | undefined, flag: string): string {
  if (!value) throw new UsageError(`${flag} is required`);
  return value;
}

function list(text: string): string[] {
  return text
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
}

function parseOperations(text: string): CaptureOperation[] {
  const ops = list(text).map((s) => s.toUpperCase());
  const bad = ops.filter((o) => !(CAPTURE_OPERATIONS as readonly string[]).includes(o));
  if (!ops.length || bad.length) throw new UsageError(`--on takes insert, update, delete (got ${text})`);
  return ops as CaptureOperation[];
}
