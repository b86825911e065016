/** Shared by the tenancy tests: organizations with their own keys, and requests made with a key. */
import type { TestCarteiro } from '../support/carteiro.ts';

export type TestOrg = { id: string; name: string; key: string; keyId: string };

export async function createOrgWithKey(c: TestCarteiro, name: string): Promise<TestOrg> {
  const org = await c.request('POST', 'organizations', { name });
  if (org.status !== 201) throw new Error(`organization creation failed: ${org.status} ${JSON.stringify(org.body)}`);
  const key = await c.request('POST', `organizations/${org.body.id}/keys`, { name: `${name} key` });
  if (key.status !== 201) throw new Error(`key creation failed: ${key.status} ${JSON.stringify(key.body)}`);
  return { id: org.body.id, name, key: key.body.key, keyId: key.body.id };
}

/** Requests with an organization key instead of the admin key. */
export function withKey(c: TestCarteiro, key: string) {
  return <T = any>(method: string, path: string, body?: unknown, headers: Record<string, string> = {}) =>
    c.request<T>(method, path, body, { authorization: `Bearer ${key}`, ...headers });
}

export type RawAnswer = { status: number; body: string; headers: Record<string, unknown>; streamed: boolean } | 'hung';

/**
 * A request through inject that also copes with streaming routes (Server-Sent Events): the answer
 * comes back when the headers do; a stream is read for `streamMs` and then let go. 'hung' if nothing
 * came back in `timeoutMs` (the request is abandoned).
 */
export async function injectRaw(
  c: TestCarteiro,
  req: { method: string; url: string; headers?: Record<string, string>; payload?: string | Buffer | object },
  opts: {
    timeoutMs?: number;
    /** How long an event stream is read (at most, with `until`). */
    streamMs?: number;
    /** Stop reading an event stream as soon as what it sent so far passes this. */
    until?: (body: string) => boolean;
    /** Stop reading an event stream when this settles. */
    stopWhen?: Promise<unknown>;
    /** Called when an event stream's headers are out, i.e. once it is subscribed. */
    onStream?: () => void;
  } = {},
): Promise<RawAnswer> {
  const answer = c.app
    .inject({
      method: req.method as 'GET',
      url: req.url,
      headers: req.headers ?? {},
      payloadAsStream: true,
      ...(req.payload === undefined ? {} : { payload: req.payload }),
    })
    .then(async (r) => {
      const stream = r.stream();
      const streamed = String(r.headers['content-type'] ?? '').startsWith('text/event-stream');
      const chunks: Buffer[] = [];
      if (streamed) {
        opts.onStream?.();
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, opts.streamMs ?? 0);
          stream.on('data', (chunk: Buffer) => {
            chunks.push(Buffer.from(chunk));
            if (opts.until?.(Buffer.concat(chunks).toString('utf8'))) {
              clearTimeout(timer);
              resolve();
            }
          });
          stream.on('error', () => {});
          void opts.stopWhen?.finally(() => {
            clearTimeout(timer);
            resolve();
          });
        });
        stream.destroy();
      } else {
        for await (const chunk of stream) chunks.push(Buffer.from(chunk as Buffer));
      }
      return { status: r.statusCode, body: Buffer.concat(chunks).toString('utf8'), headers: r.headers as Record<string, unknown>, streamed };
    });
  let timer: NodeJS.Timeout | undefined;
  const hung = new Promise<'hung'>((resolve) => {
    timer = setTimeout(() => resolve('hung'), opts.timeoutMs ?? 5_000 + (opts.streamMs ?? 0));
  });
  try {
    return await Promise.race([answer, hung]);
  } finally {
    clearTimeout(timer);
  }
}
