/**
 * A static file of the dashboard or the portal page, read once at start-up, with the ETag its
 * revalidation (`cache-control: no-cache`, 304 when unchanged) compares.
 */
import { readFileSync } from 'node:fs';
import { createHash } from 'node:crypto';

export type StaticAsset = { body: Buffer; type: string; etag: string };

export function staticAsset(url: URL, type: string): StaticAsset {
  const body = readFileSync(url);
  return { body, type, etag: `"${createHash('sha256').update(body).digest('base64url').slice(0, 27)}"` };
}

/** The DOM builder both pages load before their own script (shared/dom.js). */
export const SHARED_DOM_SCRIPT = staticAsset(new URL('./shared/dom.js', import.meta.url), 'text/javascript; charset=utf-8');
