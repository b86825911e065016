/**
 * What of a request URL may be logged. Fastify's "incoming request" line carries the URL, query
 * string included: a key sent as `?api_key=…` (refused, but logged in full) or a user id in
 * `?user_id=…` (which no erasure can take back out of a log) ended up in clear in every log store.
 * The path is kept (a route that carries a person in it, DELETE /users/:user_id/data, logs its own
 * way: api/routes/user-data.ts); in the query, only parameters that name no one and hold no secret
 * keep their values, known parameters keep their names, and any other name goes too, since it may
 * be the secret itself (`?ck_live_…`).
 */
import type { FastifyRequest } from 'fastify';

/** Paging and filters: values that identify no person and open nothing. */
const SHOWN = new Set(['limit', 'cursor', 'status', 'event_type', 'since', 'until', 'action', 'actor', 'organization_id', 'key_id', 'endpoint_id']);
/** Parameters a route takes (or a caller is known to try) whose values are redacted. */
const NAMED = new Set(['user_id', 'target_id', 'api_key', 'apikey', 'key', 'token', 'access_token', 'secret']);
const REDACTED = '[redacted]';

function decoded(text: string): string {
  try {
    return decodeURIComponent(text.replace(/\+/g, ' '));
  } catch {
    return text;
  }
}

export function redactedUrl(url: string): string {
  const q = url.indexOf('?');
  if (q < 0) return url;
  const params = url
    .slice(q + 1)
    .split('&')
    .map((pair) => {
      const eq = pair.indexOf('=');
      const rawName = eq < 0 ? pair : pair.slice(0, eq);
      const name = decoded(rawName);
      if (SHOWN.has(name)) return pair;
      return NAMED.has(name) ? `${rawName}=${REDACTED}` : REDACTED;
    });
  return `${url.slice(0, q)}?${params.join('&')}`;
}

/** Fastify's request serializer, with the URL redacted (the fields are Fastify's own). */
export function redactedRequest(req: FastifyRequest) {
  return { method: req.method, url: redactedUrl(req.url), host: req.host, remoteAddress: req.ip, remotePort: req.socket?.remotePort };
}
