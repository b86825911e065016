/**
 * carteiro <command>
 *   start     API and worker in one process (the default)
 *   api       the HTTP API only
 *   worker    the delivery worker only
 *   migrate   apply the ledger's migrations and exit
 *   sql       print every migration as one SQL script (for psql -f or supabase/migrations/)
 * and the sub-commands of commands.ts (triggers, n8n, keys, and the operator's send, tail, events,
 * endpoints, replay, recover, verify, listen).
 */
import './compile-cache.ts';
import { loadConfig, ConfigError, type Config } from '../config/config.ts';
import { EXTRA_COMMANDS } from './commands.ts';
import { wantsHelp, type CliCommand } from './sub-command.ts';
import { isLedgerDown } from '../ledger/connection.ts';
import { DataFolderInUseError } from '../ledger/data-folder-lock.ts';
import { SchemaNewerThanCodeError } from '../ledger/migrate.ts';
import { SecretBoxError } from '../crypto/secret-box.ts';

const CORE_COMMANDS: Record<string, string> = {
  start: 'API and worker in one process (the default)',
  api: 'the HTTP API only',
  worker: 'the delivery worker only',
  migrate: "apply the ledger's migrations and exit",
  sql: 'print every migration as one SQL script',
};

const USAGE = `usage: carteiro <${[...Object.keys(CORE_COMMANDS), ...EXTRA_COMMANDS.map((c) => c.name)].join('|')}> [options]
       carteiro <command> --help`;

function printOverview(): void {
  console.log(USAGE);
  for (const [name, summary] of Object.entries(CORE_COMMANDS)) console.log(`  ${name.padEnd(10)}${summary}`);
  for (const c of EXTRA_COMMANDS) console.log(`  ${c.name.padEnd(10)}${c.summary}`);
}

let loaded: Config | undefined;

async function main(argv: string[]): Promise<number> {
  const [command = 'start', ...rest] = argv;
  if (command === '--help' || command === '-h' || command === 'help') {
    printOverview();
    return 0;
  }
  const extra = EXTRA_COMMANDS.find((c) => c.name === command);
  const core = Object.hasOwn(CORE_COMMANDS, command);
  if (!extra && !core) {
    console.error(`unknown command "${command}"\n${USAGE}`);
    return 2;
  }
  // Help is answered before the configuration is read: it must work with any environment, and must
  // never open the ledger, make the data folder or listen.
  const loadedExtra = extra ? await extra.load() : null;
  if (wantsHelp(rest)) {
    console.log(
      loadedExtra
        ? (loadedExtra.helpFor?.(rest) ?? loadedExtra.usage)
        : `usage: carteiro ${command}\n  ${CORE_COMMANDS[command]}\n  (configured by environment variables: see the README)`,
    );
    return 0;
  }
  if (core && rest.length) {
    // Anything after a core command was a mistake (a misspelt option): better refused than ignored.
    console.error(`carteiro ${command} takes no arguments (got ${rest.join(' ')}); it is configured by environment variables\n${USAGE}`);
    return 2;
  }
  const config = loadConfig();
  loaded = config;
  // The server and migration code is loaded only for the commands that run it: the operator's API
  // commands (send, events, …) start faster without it.
  switch (command) {
    case 'start':
    case 'api':
    case 'worker':
      return (await import('./serve.ts')).runServer(config, command === 'start' ? 'all' : command);
    case 'migrate':
      return (await import('./migrate-commands.ts')).runMigrate(config);
    case 'sql':
      return (await import('./migrate-commands.ts')).runPrintSql(config);
    default:
      return (loadedExtra as CliCommand).run(config, rest);
  }
}

main(process.argv.slice(2)).then(
  (code) => {
    if (code !== -1) process.exitCode = code;
  },
  (err) => {
    if (err instanceof ConfigError || err instanceof DataFolderInUseError || err instanceof SchemaNewerThanCodeError) console.error(err.message);
    // Raised while the keyring is read at start-up: a configuration mistake, said without a stack.
    else if (err instanceof SecretBoxError) console.error(`CARTEIRO_ENCRYPTION_KEYS: ${err.message}`);
    else if (isLedgerDown(err)) console.error(`cannot reach the ledger (${describeDatabase()}): ${(err as Error).message}`);
    else console.error(err);
    process.exitCode = 1;
  },
);

/** Where DATABASE_URL points, without its credentials. */
function describeDatabase(): string {
  try {
    const url = new URL(loaded?.database.url ?? '');
    return `Postgres at ${url.hostname}:${url.port || 5432}`;
  } catch {
    return 'embedded PGlite';
  }
}
