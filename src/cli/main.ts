/**
 * carteiro <command>
 *   start     API and worker in one process (the default)
 *   api       the HTTP API only
 *   worker    the delivery worker only
 *   migrate   apply the ledger's migrations and exit
 *   sql       print every migration as one SQL script (for psql -f or supabase/migrations/)
 */
import { loadConfig, ConfigError, type Config } from '../config/config.ts';
import { runServer } from './serve.ts';
import { runMigrate, runPrintSql } from './migrate-commands.ts';
import { EXTRA_COMMANDS } from './commands.ts';
import { isLedgerDown } from '../api/error-handler.ts';

const USAGE = `usage: carteiro <start|api|worker|migrate|sql${EXTRA_COMMANDS.map((c) => '|' + c.name).join('')}> [options]`;

let loaded: Config | undefined;

async function main(argv: string[]): Promise<number> {
  const [command = 'start', ...rest] = argv;
  if (command === '--help' || command === '-h' || command === 'help') {
    console.log(USAGE);
    for (const c of EXTRA_COMMANDS) console.log(`  ${c.name.padEnd(10)}${c.summary}`);
    return 0;
  }
  const config = loadConfig();
  loaded = config;
  switch (command) {
    case 'start':
      return runServer(config, 'all');
    case 'api':
      return runServer(config, 'api');
    case 'worker':
      return runServer(config, 'worker');
    case 'migrate':
      return runMigrate(config);
    case 'sql':
      return runPrintSql(config);
    default: {
      const extra = EXTRA_COMMANDS.find((c) => c.name === command);
      if (extra) return extra.run(config, rest);
      console.error(USAGE);
      return 2;
    }
  }
}

main(process.argv.slice(2)).then(
  (code) => {
    if (code !== -1) process.exitCode = code;
  },
  (err) => {
    if (err instanceof ConfigError) console.error(err.message);
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
