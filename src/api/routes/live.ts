/**
 * GET /live: live updates as Server-Sent Events (text/event-stream) for the dashboard. Each message
 * of the live bus (`deliveries.recorded`, `events.accepted`, …) for the caller's organization is
 * forwarded as `event: <type>` with the message as JSON `data:`; an admin reading across all
 * organizations sees them all, and only it sees messages that name no organization. A comment line
 * every 15 s keeps proxies and the socket timeout from cutting an idle stream.
 *
 * Authenticated like every route (browsers read it with fetch(), since EventSource cannot send an
 * Authorization header). A client that goes away unsubscribes at once; one that stops reading is
 * dropped once its unread backlog passes a limit; app.close() ends every open stream (preClose), so
 * shutdown never waits on them.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { ApiServices } from '../api-services.ts';
import type { LiveMessage } from '../../coordination/live-bus.ts';
import { RateLimitedError } from '../../errors/errors.ts';

/** What this module uses of the API's services. */
type LiveRouteDeps = Pick<ApiServices, 'authenticate' | 'liveBus'>;

export type LiveRouteOptions = {
  heartbeatMs?: number;
  /** Open streams allowed per key (the admin key counts as one). */
  maxStreamsPerKey?: number;
  /** Unread bytes a client may fall behind by before it is dropped. */
  maxBacklogBytes?: number;
};

const DEFAULTS: Required<LiveRouteOptions> = { heartbeatMs: 15_000, maxStreamsPerKey: 20, maxBacklogBytes: 1024 * 1024 };

/** Whether a message belongs on a stream that reads `readOrganizationId` (null: all organizations). */
export function visibleTo(readOrganizationId: string | null, m: LiveMessage): boolean {
  if (readOrganizationId === null) return true;
  return typeof m.organization_id === 'string' && m.organization_id === readOrganizationId;
}

/** One SSE frame. `type` is reduced to a safe token: it names the SSE event and must hold no newline. */
export function sseFrame(m: LiveMessage): string {
  const type =
    String(m.type)
      .replace(/[^A-Za-z0-9._-]/g, '_')
      .slice(0, 100) || 'message';
  return `event: ${type}\ndata: ${JSON.stringify(m)}\n\n`;
}

export function createLiveRoutes(options: LiveRouteOptions = {}) {
  const opts = { ...DEFAULTS, ...options };
  return async function liveRoutes(app: FastifyInstance, services: LiveRouteDeps): Promise<void> {
    const open = new Set<() => void>();
    const perKey = new Map<string, number>();
    const stillAuthorized = async (bearer: string | undefined) => {
      if (!bearer) return false;
      try {
        return (await services.authenticate(bearer)) !== null;
      } catch {
        return true; // the ledger is unreachable: keep the stream; the next heartbeat asks again
      }
    };

    // Before the server waits for in-flight requests: without this, close() would wait on every stream.
    app.addHook('preClose', async () => {
      for (const end of [...open]) end();
    });

    app.get(
      '/live',
      { config: { audit: false }, schema: { tags: ['monitoring'], description: 'Live updates as Server-Sent Events (text/event-stream).' } },
      async (request: FastifyRequest, reply: FastifyReply) => {
        const tenant = request.tenant;
        // Portal sessions never reach here (no `config.portal`): the auth hook refuses them.
        const key = tenant.principal.kind === 'admin' ? 'admin' : tenant.principal.kind === 'portal' ? tenant.principal.sessionId : tenant.principal.keyId;
        if ((perKey.get(key) ?? 0) >= opts.maxStreamsPerKey) throw new RateLimitedError(5);
        perKey.set(key, (perKey.get(key) ?? 0) + 1);

        const org = tenant.readOrganizationId;
        const res = reply.raw;
        reply.hijack();
        // Headers hooks already set (request id, rate-limit figures) go out with the stream's own.
        const inherited = Object.fromEntries(Object.entries(reply.getHeaders()).filter(([, v]) => v !== undefined)) as Record<
          string,
          string | number | string[]
        >;
        res.writeHead(200, {
          ...inherited,
          'content-type': 'text/event-stream; charset=utf-8',
          'cache-control': 'no-cache, no-store, no-transform',
          'x-accel-buffering': 'no',
          'x-content-type-options': 'nosniff',
          // A stream ends only at shutdown or on error; its connection is never reused. Without this, a
          // stream ended by app.close() leaves a keep-alive connection that close() waits on (up to 72 s).
          connection: 'close',
        });

        let done = false;
        const write = (text: string) => {
          if (done) return;
          if (res.writableLength > opts.maxBacklogBytes) {
            request.log.warn({ backlog: res.writableLength }, 'live stream client is not reading; dropped');
            res.destroy();
            return;
          }
          try {
            res.write(text);
          } catch {
            res.destroy(); // never let one stream's failure reach the bus's publisher
          }
        };
        const unsubscribe = services.liveBus.subscribe((m) => {
          if (visibleTo(org, m)) write(sseFrame(m));
        });
        // Each heartbeat also asks whether the key still stands: a revoked key's stream ends within one.
        const bearer = /^Bearer\s+(\S+)$/i.exec(request.headers.authorization ?? '')?.[1];
        const heartbeat = setInterval(() => {
          // The admin key is configuration, not revocable: only organization keys are asked again.
          void (tenant.principal.kind === 'admin' ? Promise.resolve(true) : stillAuthorized(bearer)).then((ok) => {
            if (ok) write(`: heartbeat ${new Date().toISOString()}\n\n`);
            else end();
          });
        }, opts.heartbeatMs);
        heartbeat.unref();

        const cleanup = () => {
          if (done) return;
          done = true;
          clearInterval(heartbeat);
          unsubscribe();
          open.delete(end);
          const n = (perKey.get(key) ?? 1) - 1;
          if (n > 0) perKey.set(key, n);
          else perKey.delete(key);
        };
        function end() {
          cleanup();
          if (!res.writableEnded) res.end();
        }
        open.add(end);
        res.on('close', cleanup);
        res.on('error', cleanup);
        // A client gone while the hooks ran (its socket closed before these listeners existed) emits
        // no 'close' now: without this its slot, subscription and timer were held for ever.
        if (res.destroyed || request.raw.destroyed || request.raw.socket?.destroyed) {
          end();
          return;
        }

        write(`retry: 3000\n${sseFrame({ type: 'ready', organization_id: org, heartbeat_ms: opts.heartbeatMs })}`);
      },
    );
  };
}

export const liveRoutes = createLiveRoutes();
