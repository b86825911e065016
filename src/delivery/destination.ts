/** The baseline rule for where webhooks may go: absolute http(s) URLs without embedded credentials. */
import { UnsafeDestinationError } from '../errors/errors.ts';

/** `field` is the request field the URL came from (url, webhook_url, base_url), named in the error. */
export async function checkUrlShape(url: string, field = 'url'): Promise<void> {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new UnsafeDestinationError(`${field} "${url.slice(0, 200)}" is not an absolute URL`, field);
  }
  if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') throw new UnsafeDestinationError(`${field} must use http or https`, field);
  if (parsed.username || parsed.password)
    throw new UnsafeDestinationError(`${field} must not carry credentials; the webhook signature authenticates us`, field);
  // Nothing can listen on port 0: every delivery would fail, and only at delivery time.
  if (parsed.port === '0') throw new UnsafeDestinationError(`${field} has port 0, which nothing can listen on`, field);
}
