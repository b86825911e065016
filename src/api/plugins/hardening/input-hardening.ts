/**
 * Input hardening that applies to every route, before any handler runs:
 *   - JSON bodies through the strict parser (json-body.ts);
 *   - a NUL (%00) anywhere in the URL is refused: Postgres text cannot hold it, so a path or query
 *     value carrying one would otherwise reach a query and fail there as a 500.
 * Size limits (body, headers) and slow-client timeouts are Fastify/Node server options (api/app.ts);
 * the Postgres data errors that still get through are 400s (api/error-handler.ts).
 */
import type { FastifyInstance } from 'fastify';
import { ValidationError } from '../../../errors/errors.ts';
import { registerJsonBodyParser } from './json-body.ts';

const ENCODED_NUL = /%00/;

export function registerInputHardening(app: FastifyInstance): void {
  registerJsonBodyParser(app);
  app.addHook('onRequest', async (request) => {
    if (ENCODED_NUL.test(request.url) || request.url.includes('\u0000')) {
      throw new ValidationError('the URL contains a NUL character (%00)', { field: 'url' });
    }
  });
}
