/**
 * What a transformation is given and what it may return (docs/transformations.md, "The contract").
 *
 *   in:  { event_type, event_id, timestamp, data, headers: {}, path: null, cancel: false }
 *   out: the same object, changed:
 *        payload   the whole body to send (an object or an array). Absent: Carteiro's envelope
 *                  {id, type, timestamp, data}, with `data` as the handler left it.
 *        headers   headers to add. Carteiro's own (signatures, webhook-*, content-type, user-agent,
 *                  host and the connection's) cannot be set: a handler that sets one fails.
 *        path      appended to the endpoint URL's path ("/sendMessage"); never changes its host.
 *        cancel    true: nothing is sent, and the delivery is settled as cancelled.
 * event_type, event_id and timestamp are read-only: the envelope and the webhook-id keep the event's.
 */

/** The event as a transformation sees it. `dataJson` is the data the endpoint would receive (allow-list applied, sealed fields opened). */
export type TransformationEvent = { id: string; type: string; createdAt: Date; dataJson: string };

export type TransformedRequest = { url: string; headers: Record<string, string>; body: string };

/** What a handler's return value asks for: a request to send, a cancel, or what is wrong with it. */
export type Interpreted = { kind: 'send'; request: TransformedRequest } | { kind: 'cancel' } | { kind: 'invalid'; message: string };

export const HEADER_LIMITS = { count: 32, nameChars: 256, valueChars: 8192 } as const;
const PATH_CHARS = 1024;

/**
 * Headers Carteiro sets itself, or that belong to the connection: a transformation may not set them.
 * The signature headers are what a receiver checks; content-type and length describe the signed body.
 */
const RESERVED = new Set([
  'content-type',
  'content-length',
  'content-encoding',
  'transfer-encoding',
  'host',
  'user-agent',
  'connection',
  'keep-alive',
  'upgrade',
  'te',
  'trailer',
  'expect',
  'proxy-authorization',
  'proxy-connection',
]);
const RESERVED_PREFIXES = ['webhook-', 'x-webhook-'];
const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;

export function isReservedHeader(name: string): boolean {
  const lower = name.toLowerCase();
  return RESERVED.has(lower) || RESERVED_PREFIXES.some((p) => lower.startsWith(p));
}

/** The handler's argument, as JSON text: the event's data is spliced in as stored, never re-serialised here. */
export function transformationInput(e: TransformationEvent): string {
  return (
    `{"event_type":${JSON.stringify(e.type)},"event_id":${JSON.stringify(e.id)},"timestamp":${JSON.stringify(e.createdAt.toISOString())},` +
    `"data":${e.dataJson},"headers":{},"path":null,"cancel":false}`
  );
}

const isObject = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === 'object' && !Array.isArray(v);

/**
 * Reads a handler's return value (its JSON text) against the contract, for an endpoint at `endpointUrl`;
 * `maxBodyBytes` bounds the body.
 */
export function interpretOutput(outputJson: string, e: TransformationEvent, endpointUrl: string, maxBodyBytes: number): Interpreted {
  let out: unknown;
  try {
    out = JSON.parse(outputJson);
  } catch {
    return invalid('handler must return the webhook object');
  }
  if (!isObject(out))
    return invalid(`handler must return the webhook object (it returned ${out === null ? 'null' : Array.isArray(out) ? 'an array' : typeof out})`);
  if (out.cancel !== undefined && out.cancel !== null && typeof out.cancel !== 'boolean') return invalid('cancel must be true or false');
  if (out.cancel === true) return { kind: 'cancel' };

  const headers = readHeaders(out.headers);
  if (typeof headers === 'string') return invalid(headers);
  const url = appendPath(endpointUrl, out.path);
  if (!url.ok) return invalid(url.error);

  let body: string;
  if (out.payload !== undefined && out.payload !== null) {
    if (typeof out.payload !== 'object') return invalid('payload must be an object or an array (the JSON body to send)');
    body = JSON.stringify(out.payload);
  } else {
    body = `{"id":${JSON.stringify(e.id)},"type":${JSON.stringify(e.type)},"timestamp":${JSON.stringify(e.createdAt.toISOString())},"data":${JSON.stringify(out.data ?? null)}}`;
  }
  const size = Buffer.byteLength(body);
  if (size > maxBodyBytes) return invalid(`the body would be ${size} bytes, over the limit of ${maxBodyBytes} (CARTEIRO_TRANSFORMATION_MAX_BODY_BYTES)`);
  return { kind: 'send', request: { url: url.value, headers, body } };
}

function invalid(message: string): Interpreted {
  return { kind: 'invalid', message };
}

/** The headers to add, or what is wrong with them. Values may be strings or numbers (sent as text). */
function readHeaders(value: unknown): Record<string, string> | string {
  if (value === undefined || value === null) return {};
  if (!isObject(value)) return 'headers must be an object of header names to values';
  const entries = Object.entries(value);
  if (entries.length > HEADER_LIMITS.count) return `headers holds ${entries.length} headers; at most ${HEADER_LIMITS.count}`;
  const headers: Record<string, string> = {};
  for (const [name, raw] of entries) {
    const shown = JSON.stringify(name.slice(0, 100));
    if (!TOKEN.test(name) || name.length > HEADER_LIMITS.nameChars)
      return `headers[${shown}] is not a header name (letters, digits and !#$%&'*+-.^_\`|~, up to ${HEADER_LIMITS.nameChars})`;
    if (isReservedHeader(name)) return `headers[${shown}] is set by Carteiro (signatures, content-type, user-agent, host) and cannot be changed`;
    if (typeof raw !== 'string' && typeof raw !== 'number') return `headers[${shown}] must be a string`;
    const text = String(raw);
    if (/[\r\n\0]/.test(text)) return `headers[${shown}] holds a line break or NUL character`;
    if (text.length > HEADER_LIMITS.valueChars) return `headers[${shown}] is longer than ${HEADER_LIMITS.valueChars} characters`;
    const lower = name.toLowerCase();
    if (lower in headers) return `headers[${shown}] is given twice (header names are case-insensitive)`;
    headers[lower] = text;
  }
  return headers;
}

/**
 * The endpoint URL with `path` appended to its path (its query string kept after it): `path` starts
 * with `/`, and holds no `..` or `.` segment (nor one spelled with percent-escapes), no empty segment,
 * no backslash, fragment, space or control character; it may end with a query string of its own, joined to the endpoint's with `&`. The
 * result is parsed again and must keep the endpoint's origin and path prefix: a path can never reach
 * another host, or another part of the receiver's tree than below the endpoint's URL.
 */
export function appendPath(endpointUrl: string, path: unknown): { ok: true; value: string } | { ok: false; error: string } {
  if (path === undefined || path === null || path === '') return { ok: true, value: endpointUrl };
  if (typeof path !== 'string') return { ok: false, error: 'path must be a string such as "/sendMessage"' };
  if (path.length > PATH_CHARS) return { ok: false, error: `path is longer than ${PATH_CHARS} characters` };
  if (!path.startsWith('/')) return { ok: false, error: 'path must start with "/" (it is appended to the endpoint URL\'s path)' };
  // Printable ASCII only (send anything else percent-encoded), no fragment and no backslash.
  if (!/^[\x21-\x7e]+$/.test(path) || /[#\\]/.test(path)) {
    return { ok: false, error: 'path may hold only printable ASCII without spaces, "#" or "\\" (percent-encode the rest)' };
  }
  const [pathPart = '', query] = splitOnce(path, '?');
  const segments = pathPart.split('/').slice(1);
  for (const s of segments) {
    const decoded = safeDecode(s);
    if (decoded === null) return { ok: false, error: 'path holds an invalid percent-escape' };
    if (decoded === '' && segments.length > 1) return { ok: false, error: 'path holds an empty segment ("//")' };
    // Encoded slashes are allowed (an id may hold one), but not to spell a "." or ".." segment that a
    // receiver decoding them first would resolve.
    if (decoded.split(/[/\\]/).some((part) => part === '.' || part === '..')) {
      return { ok: false, error: 'path may not hold "." or ".." segments, even percent-encoded' };
    }
  }
  let base: URL;
  try {
    base = new URL(endpointUrl);
  } catch {
    return { ok: false, error: 'the endpoint URL cannot be parsed' };
  }
  const basePath = base.pathname.endsWith('/') ? base.pathname.slice(0, -1) : base.pathname;
  const search = [base.search.slice(1), query ?? ''].filter(Boolean).join('&');
  const joined = `${base.origin}${basePath}${pathPart}${search ? `?${search}` : ''}`;
  let result: URL;
  try {
    result = new URL(joined);
  } catch {
    return { ok: false, error: 'path does not make a valid URL' };
  }
  if (result.origin !== base.origin || !result.pathname.startsWith(basePath)) return { ok: false, error: 'path would leave the endpoint URL' };
  return { ok: true, value: result.href };
}

function splitOnce(text: string, sep: string): [string, string | undefined] {
  const at = text.indexOf(sep);
  return at < 0 ? [text, undefined] : [text.slice(0, at), text.slice(at + 1)];
}

function safeDecode(s: string): string | null {
  try {
    return decodeURIComponent(s);
  } catch {
    return null;
  }
}
