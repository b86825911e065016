/**
 * The receiver's side, with no server of Carteiro's needed; both use delivery/signature.ts's
 * verifyWebhook, the checks Carteiro's own signatures are made for:
 *   carteiro verify --secret S < request   checks a saved request's signatures (both schemes)
 *   carteiro listen --port P [--secret S]  a local receiver that verifies and pretty-prints webhooks
 */
import { readFileSync } from 'node:fs';
import { createServer, type IncomingMessage } from 'node:http';
import { verifyWebhook, type SchemeVerdict, type WebhookVerification } from '../delivery/signature.ts';
import { fromCommander, rootCommand } from './commander-command.ts';
import { UsageError, type CliCommand } from './sub-command.ts';

const DEFAULT_TOLERANCE_SECONDS = 300;

function wholeNumber(name: string, min: number, max: number) {
  return (v: string): number => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < min || n > max) throw new UsageError(`${name}: "${v}" is not a whole number from ${min} to ${max}`);
    return n;
  };
}

/**
 * A request as text: an HTTP request as received (request line, headers, a blank line, the body) or
 * headers then the body, or a bare body (its headers given with --header). Header names lower-cased.
 */
export function parseRequest(text: string): { headers: Record<string, string>; body: string } {
  const firstLine = text.slice(0, text.search(/\r?\n|$/));
  const isRequestLine = /^[A-Z]+ \S+ HTTP\/\d(\.\d)?$/.test(firstLine);
  if (!isRequestLine && !/^[A-Za-z0-9-]+:[ \t]/.test(firstLine)) return { headers: {}, body: text };
  const blank = /\r?\n\r?\n/.exec(text);
  const head = blank ? text.slice(0, blank.index) : text;
  const body = blank ? text.slice(blank.index + blank[0].length) : '';
  const headers: Record<string, string> = {};
  for (const line of head.split(/\r?\n/).slice(isRequestLine ? 1 : 0)) {
    const colon = line.indexOf(':');
    if (colon > 0) headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
  }
  return { headers, body };
}

const VERDICT: Record<SchemeVerdict, string> = { valid: 'valid', invalid: 'INVALID', missing: 'not signed' };

function describe(v: WebhookVerification): string[] {
  const age =
    v.ageSeconds === null
      ? 'no timestamp'
      : `timestamp ${Math.abs(v.ageSeconds)} s ${v.ageSeconds >= 0 ? 'ago' : 'in the future'}${v.stale ? ' (outside the tolerance: STALE)' : ''}`;
  return [`  X-Webhook-Signature (seed):         ${VERDICT[v.seed]}`, `  webhook-signature (Standard Webhooks): ${VERDICT[v.standard]}`, `  ${age}`];
}

export const verifyCommand: CliCommand = fromCommander('verify', (ctx) =>
  rootCommand('verify')
    .description(
      'Check the signatures of a webhook request read from standard input, both schemes (X-Webhook-Signature and Standard Webhooks). ' +
        'The input is the request as received (request line, headers, blank line, body), or headers then the body, or just the body with --header. ' +
        'Exit code 0: every signature present verifies; 1: one does not (or none is there, or the timestamp is stale); 2: usage.',
    )
    .requiredOption('--secret <secret>', "the endpoint's signing secret (whsec_…)")
    .option('-H, --header <header...>', 'a header "name: value", for a bare body (repeatable)')
    .option(
      '--tolerance <seconds>',
      'how far the timestamp may be from now (0: not checked)',
      wholeNumber('--tolerance', 0, 10 * 365 * 86400),
      DEFAULT_TOLERANCE_SECONDS,
    )
    .option('--json', 'print the result as JSON')
    .action((o: { secret: string; header?: string[]; tolerance: number; json?: boolean }) => {
      if (process.stdin.isTTY) throw new UsageError('pipe the request into it: carteiro verify --secret S < request.txt');
      const { headers, body } = parseRequest(readFileSync(0, 'utf8'));
      for (const h of o.header ?? []) {
        const colon = h.indexOf(':');
        if (colon <= 0) throw new UsageError(`--header: "${h}" is not "name: value"`);
        headers[h.slice(0, colon).trim().toLowerCase()] = h.slice(colon + 1).trim();
      }
      const v = verifyWebhook(o.secret, headers, body, { toleranceSeconds: o.tolerance });
      if (o.json) console.log(JSON.stringify(v));
      else {
        console.log(v.ok ? 'signature OK' : 'signature FAILED');
        for (const line of describe(v)) console.log(line);
      }
      ctx.exitCode = v.ok ? 0 : 1;
    }),
);

function readBody(req: IncomingMessage, limit: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > limit) {
        reject(new Error('body too large'));
        req.destroy();
      } else chunks.push(c);
    });
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

function pretty(body: string): string {
  try {
    return JSON.stringify(JSON.parse(body), null, 2);
  } catch {
    return body;
  }
}

export const listenCommand: CliCommand = fromCommander('listen', (ctx) =>
  rootCommand('listen')
    .description(
      'Receive webhooks on a local port, verify their signatures (with --secret) and print each one readably, until Ctrl-C. ' +
        'Point an endpoint at it: carteiro endpoints create http://127.0.0.1:P/ --name local (the server needs CARTEIRO_ALLOW_PRIVATE_NETWORKS=127.0.0.0/8 to deliver to loopback).',
    )
    .option('-p, --port <port>', 'the port to listen on (0: any free one)', wholeNumber('--port', 0, 65535), 4000)
    .option('--host <host>', 'the address to listen on', '127.0.0.1')
    .option('--secret <secret>', "the endpoint's signing secret: verify each webhook with it")
    .option('--status <code>', 'the status to answer with', wholeNumber('--status', 200, 599), 200)
    .option(
      '--tolerance <seconds>',
      'how far a timestamp may be from now (0: not checked)',
      wholeNumber('--tolerance', 0, 10 * 365 * 86400),
      DEFAULT_TOLERANCE_SECONDS,
    )
    .option('--headers', 'print every header, not just the webhook ones')
    .option('--json', 'print one JSON line per request instead')
    .action(async (o: { port: number; host: string; secret?: string; status: number; tolerance: number; headers?: boolean; json?: boolean }) => {
      let received = 0;
      const server = createServer(async (req, res) => {
        let body: Buffer;
        try {
          body = await readBody(req, 10 * 1024 * 1024);
        } catch {
          res.writeHead(413).end();
          return;
        }
        const text = body.toString('utf8');
        const headers = Object.fromEntries(Object.entries(req.headers).map(([k, v]) => [k, Array.isArray(v) ? v.join(', ') : v]));
        const v = o.secret ? verifyWebhook(o.secret, headers, body, { toleranceSeconds: o.tolerance }) : null;
        res.writeHead(o.status, { 'content-type': 'application/json' }).end(JSON.stringify({ received: true }));
        received++;
        if (o.json) {
          console.log(JSON.stringify({ at: new Date().toISOString(), method: req.method, path: req.url, headers, body: text, verification: v }));
          return;
        }
        let type = '';
        try {
          type = String((JSON.parse(text) as { type?: unknown }).type ?? '');
        } catch {}
        const lines = [
          `── ${new Date().toISOString()}  ${req.method} ${req.url}  ${type || '(no type)'}  webhook-id ${headers['webhook-id'] ?? '-'}  → ${o.status}`,
        ];
        if (v) lines.push(v.ok ? 'signature OK' : 'signature FAILED', ...describe(v));
        else lines.push('signature not checked (pass --secret to verify)');
        const shown = Object.entries(headers).filter(([k]) => o.headers || k.startsWith('webhook-') || k.startsWith('x-webhook-') || k === 'user-agent');
        for (const [k, val] of shown) lines.push(`  ${k}: ${val}`);
        lines.push(pretty(text), '');
        console.log(lines.join('\n'));
      });
      const failed = await new Promise<NodeJS.ErrnoException | null>((resolve) => {
        server.once('error', resolve);
        server.listen(o.port, o.host, () => resolve(null));
      });
      if (failed) {
        console.error(`error: cannot listen on ${o.host}:${o.port}: ${failed.code ?? failed.message}`);
        ctx.exitCode = 1;
        return;
      }
      const address = server.address() as { port: number };
      const url = `http://${o.host.includes(':') ? `[${o.host}]` : o.host}:${address.port}/`;
      console.log(`listening on ${url} (Ctrl-C to stop)${o.secret ? '' : '; pass --secret to verify signatures'}`);
      await new Promise<void>((resolve) => {
        const stop = () => {
          process.off('SIGINT', stop);
          process.off('SIGTERM', stop);
          server.close(() => resolve());
          server.closeAllConnections();
        };
        process.once('SIGINT', stop);
        process.once('SIGTERM', stop);
      });
      console.error(`stopped after ${received} request(s)`);
      ctx.exitCode = 0;
    }),
);
