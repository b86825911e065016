import type { Config } from '../config/config.ts';
import { openLedger } from '../ledger/connection.ts';
import { migrate, renderMigrationScript } from '../ledger/migrate.ts';

export async function runMigrate(config: Config): Promise<number> {
  const ledger = await openLedger(config, { poolSize: 1, applicationName: 'carteiro-migrate' });
  try {
    const applied = await migrate(ledger.sql, ledger.schema);
    console.log(applied.length ? `applied: ${applied.join(', ')}` : `schema "${ledger.schema}" is up to date`);
    return 0;
  } finally {
    await ledger.close();
  }
}

export async function runPrintSql(config: Config): Promise<number> {
  process.stdout.write(renderMigrationScript(config.database.schema) + '\n');
  return 0;
}
