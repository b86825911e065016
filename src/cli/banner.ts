/** The start-up banner: where Carteiro listens, and for a fresh embedded start, a key and a curl to paste. */
import type { Config } from '../config/config.ts';
import type { Logger } from 'pino';
import type { Role } from '../runtime/services.ts';

/**
 * With JSON logs (CARTEIRO_LOG_FORMAT, or stdout not a terminal) the banner is one log line instead,
 * without the key: text in the middle of JSON lines breaks whatever reads them.
 */
export function printBanner(o: { config: Config; role: Role; port: number; adminKey: string; showKey: boolean; embedded: boolean; log: Logger }): void {
  if (o.config.quiet) return;
  const base = `http://${o.config.http.host.includes(':') ? `[${o.config.http.host}]` : o.config.http.host}:${o.port}`;
  if (o.config.logFormat === 'json') {
    const where = o.role === 'worker' ? {} : { api: `${base}/api/webhooks`, dashboard: `${base}/dashboard`, docs: `${base}/docs` };
    o.log.info({ ...where, ledger: o.embedded ? 'pglite' : 'postgres', redis: Boolean(o.config.redis.url) }, 'carteiro started');
    return;
  }
  const lines = [
    '',
    `  Carteiro (${o.role === 'all' ? 'API + worker' : o.role}) — ledger: ${o.embedded ? `embedded PGlite in ${o.config.database.dataDir}` : 'Postgres'}` +
      `${o.config.redis.url ? ', Redis: on' : ', Redis: off (in-process)'}`,
  ];
  if (o.role !== 'worker') {
    lines.push(`  API:       ${base}/api/webhooks`, `  Health:    ${base}/api/webhooks/health`, `  Dashboard: ${base}/dashboard`, `  API docs:  ${base}/docs`);
    if (o.showKey) {
      lines.push(
        `  Admin key: ${o.adminKey}`,
        '',
        '  Try it:',
        `    curl -s -X POST ${base}/api/webhooks/trigger \\`,
        `      -H 'Authorization: Bearer ${o.adminKey}' -H 'Content-Type: application/json' \\`,
        `      -d '{"event_type":"agent.created","data":{"agent_id":"a1","name":"Assistente de Vendas"}}'`,
      );
    }
  }
  console.log(lines.join('\n') + '\n');
}
