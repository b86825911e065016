/**
 * Every request is answered within the commit deadline. While Postgres was down one `GET /events`
 * hung 14.7 s: its query waited in postgres.js for a connection that was reconnecting (each try up
 * to connect_timeout), and only ingest had a deadline of its own. Here one timer per request, from
 * arrival (so time queued behind the auth lookup counts too), answers 503 with Retry-After through the
 * error handler when the route has not answered in time; the route's own late answer is dropped.
 *
 * A route that waits on something else by design (n8n's API, a sync that waits for its delivery)
 * sets `config: { answerDeadlineMs: false }`; streams (SSE) hijack their reply and are left alone.
 */
import type { FastifyInstance } from 'fastify';
import { AnswerDeadlineError } from '../errors/errors.ts';
import { errorHandler } from './error-handler.ts';

declare module 'fastify' {
  interface FastifyContextConfig {
    /** This route's answer deadline in ms, or false for none (default: the commit deadline). */
    answerDeadlineMs?: number | false;
  }
}

export function registerAnswerDeadline(app: FastifyInstance, deadlineMs: number): void {
  app.addHook('onRequest', (request, reply, done) => {
    const ms = request.routeOptions.config?.answerDeadlineMs ?? deadlineMs;
    if (ms === false) return done();
    const timer = setTimeout(() => {
      if (reply.sent || reply.raw.headersSent) return;
      errorHandler(new AnswerDeadlineError(ms), request, reply);
    }, ms);
    timer.unref();
    reply.raw.once('close', () => clearTimeout(timer));
    done();
  });
}
