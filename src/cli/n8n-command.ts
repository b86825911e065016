/**
 * carteiro n8n <seed|discover|list>: the n8n registry from the command line (docs/n8n.md). Each run
 * opens the ledger, applies pending migrations and works through the same functions as the API.
 *
 * Embedded mode: the data folder is locked by the process that has it open (ledger/data-folder-lock.ts),
 * so while `carteiro start` runs these refuse, naming its PID and the API route that does the same.
 */
import type { Config } from '../config/config.ts';
import { CONSOLE, parseAction, UsageError, wantsHelp, type CliCommand, type OptionValues, type Output } from './sub-command.ts';
import { openLedger, type Ledger, type Sql } from '../ledger/connection.ts';
import { DataFolderInUseError } from '../ledger/data-folder-lock.ts';
import { migrate } from '../ledger/migrate.ts';
import { listN8nWorkflows, n8nWorkflowActive } from '../ledger/n8n-workflows.ts';
import { CarteiroError } from '../errors/errors.ts';
import { DEFAULT_ORGANIZATION_ID } from '../tenancy/principal.ts';
import { checkSeedPaths, seedN8nWorkflows } from '../integrations/n8n/seed.ts';
import { discoverN8nWorkflows } from '../integrations/n8n/discovery.ts';
import { createWorkflowSecrets, type WorkflowSecrets } from '../integrations/n8n/workflow-secrets.ts';
import { createSecretBox, parseKeyring } from '../crypto/secret-box.ts';
import { resolveKeys } from '../runtime/local-keys.ts';

export const N8N_USAGE = `usage:
  carteiro n8n seed [--base-url URL] [--organization UUID]
      the seed's seven workflows at <base>/webhook/<path> (base: N8N_WEBHOOK_URL)
  carteiro n8n discover [--organization UUID] [--page-size N] [--every DURATION]
      read n8n's API (N8N_API_URL, N8N_API_KEY) and create, update or deactivate workflows;
      --every 5m keeps running, discovering every 5 minutes (ms, or a number with s, m or h)
  carteiro n8n list [--organization UUID] [--json]`;

/** What each action is on a running server's API, for when the data folder is in use. */
const API_EQUIVALENT: Record<string, string> = {
  seed: 'POST /api/webhooks/n8n/workflows/seed',
  discover: 'POST /api/webhooks/n8n/discover',
  list: 'GET /api/webhooks/n8n/workflows',
};

const OPTIONS = {
  organization: { type: 'string' },
  'base-url': { type: 'string' },
  'page-size': { type: 'string' },
  every: { type: 'string' },
  json: { type: 'boolean' },
} as const;

type Values = OptionValues<typeof OPTIONS>;
type Action = (ctx: { sql: Sql; config: Config; organizationId: string; v: Values; io: Output }) => Promise<void>;

export const n8nCommand: CliCommand = {
  name: 'n8n',
  usage: N8N_USAGE,
  run: (config, args) => runN8n(config, args, CONSOLE),
};

/** The command with its output injectable (tests). Exit codes: 0 done, 1 refused (ledger or n8n), 2 usage. */
export async function runN8n(config: Config, args: string[], io: Output, opts: { signal?: AbortSignal } = {}): Promise<number> {
  if (wantsHelp(args)) {
    io.out(N8N_USAGE);
    return 0;
  }
  let action: string;
  let values: Values;
  let everyMs = 0;
  try {
    ({ action, values } = parseAction(args, OPTIONS, ACTIONS));
    if (values.every !== undefined) {
      if (action !== 'discover') throw new UsageError('--every goes with discover');
      everyMs = parseDuration(values.every);
    }
    if (values['page-size'] !== undefined && !/^\d+$/.test(values['page-size'])) throw new UsageError('--page-size is a whole number');
  } catch (err) {
    io.err(`${(err as Error).message}\n${N8N_USAGE}`);
    return 2;
  }
  const organizationId = values.organization ?? DEFAULT_ORGANIZATION_ID;
  let ledger: Ledger;
  try {
    ledger = await openLedger(config, { poolSize: 2, applicationName: 'carteiro-n8n' });
  } catch (err) {
    if (!(err instanceof DataFolderInUseError)) throw err;
    io.err(`carteiro n8n ${action}: ${err.message}\n  The running server does the same: ${API_EQUIVALENT[action]}`);
    return 1;
  }
  try {
    await migrate(ledger.sql, ledger.schema);
    const run = () => (ACTIONS[action] as Action)({ sql: ledger.sql, config, organizationId, v: values, io });
    if (!everyMs) {
      await run();
      return 0;
    }
    return await repeat(run, everyMs, io, opts.signal);
  } catch (err) {
    if (err instanceof CarteiroError) {
      io.err(`carteiro n8n ${action}: ${err.message}`);
      return 1;
    }
    throw err;
  } finally {
    await ledger.close();
  }
}

/** Runs `run` every `everyMs` until SIGINT/SIGTERM (or the signal); a failed run is reported and the next one still comes. */
async function repeat(run: () => Promise<void>, everyMs: number, io: Output, signal?: AbortSignal): Promise<number> {
  const stop = new AbortController();
  const onSignal = () => stop.abort();
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  signal?.addEventListener('abort', onSignal, { once: true });
  try {
    while (!stop.signal.aborted) {
      try {
        await run();
      } catch (err) {
        if (!(err instanceof CarteiroError)) throw err;
        io.err(`carteiro n8n discover: ${err.message} (next try in ${everyMs} ms)`);
      }
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, everyMs);
        stop.signal.addEventListener(
          'abort',
          () => {
            clearTimeout(t);
            resolve();
          },
          { once: true },
        );
      });
    }
    return 0;
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}

const ACTIONS: Record<string, Action> = {
  async seed({ sql, config, organizationId, v, io }) {
    const baseUrl = v['base-url'] ?? config.n8n.webhookUrl;
    const served = baseUrl ? await checkSeedPaths(config, baseUrl) : null;
    const outcomes = await seedN8nWorkflows(sql, { organizationId, baseUrl, secrets: workflowSecrets(config), served });
    for (const o of outcomes) {
      io.out(
        `${o.result.padEnd(9)} ${o.workflow_id}  ${o.name.padEnd(22)} ${o.webhook_url}  [${confirmationLabel(o.confirmed, o.note)}${o.is_active ? '' : '; inactive'}]`,
      );
      // Shown this once, as the API does: n8n needs it to verify the signature.
      if (o.secret) io.out(`          signing secret (shown once): ${o.secret}`);
    }
  },

  async discover({ sql, config, organizationId, v, io }) {
    const pageSize = v['page-size'] !== undefined ? Number(v['page-size']) : undefined;
    const r = await discoverN8nWorkflows({ sql, config, secrets: workflowSecrets(config) }, { organizationId, pageSize });
    io.out(
      `n8n discovery: ${r.listed} workflow(s) in ${r.pages} page(s), ${r.webhook_workflows} with a POST Webhook trigger: ` +
        `${r.created} created, ${r.updated} updated, ${r.unchanged} unchanged, ${r.deactivated} deactivated, ${r.reactivated} reactivated`,
    );
  },

  async list({ sql, organizationId, v, io }) {
    const rows = await listN8nWorkflows(sql, { organizationId, limit: 500 });
    if (v.json) {
      io.out(JSON.stringify(rows, null, 2));
      return;
    }
    if (!rows.length) io.out('no n8n workflows');
    for (const w of rows) {
      const flags = [
        n8nWorkflowActive(w) ? 'active' : `inactive${w.disabled_reason ? ` (${w.disabled_reason})` : ''}`,
        `state ${w.state}`,
        // The note repeats the inactive reason when that is why: say it once.
        w.confirmed === false && w.confirmation_note === w.disabled_reason ? 'unconfirmed' : confirmationLabel(w.confirmed, w.confirmation_note),
        w.use_test_url ? 'TEST URL' : '',
      ].filter(Boolean);
      io.out(`${w.workflow_id}  ${w.name}  ${w.delivery_url ?? w.webhook_url}  ← ${w.event_types.join(', ') || '(no event types)'}  [${flags.join('; ')}]`);
    }
  },
};

/** Whether n8n's API confirmed the path: "confirmed", "unconfirmed: <why>", or "not checked" (no N8N_API_URL). */
function confirmationLabel(confirmed: boolean | null, note: string | null): string {
  if (confirmed === true) return 'confirmed';
  return confirmed === false ? `unconfirmed: ${note ?? 'no reason recorded'}` : 'not checked';
}

/** Secrets for the workflows a run creates; the encryption keys are read only if one is sealed. */
function workflowSecrets(config: Config): WorkflowSecrets {
  return createWorkflowSecrets(() => createSecretBox(parseKeyring(resolveKeys(config).encryptionKeys)), config.keys.webhookSecret);
}

export function parseDuration(text: string): number {
  const m = /^(\d+)(ms|s|m|h)?$/.exec(text.trim());
  if (!m) throw new UsageError(`--every takes a duration like 30000, 30s, 5m or 1h (got ${text})`);
  const ms = Number(m[1]) * { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }[(m[2] ?? 'ms') as 'ms' | 's' | 'm' | 'h'];
  if (ms < 1000) throw new UsageError('--every must be at least 1 s');
  return ms;
}
