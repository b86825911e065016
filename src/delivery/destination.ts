/** The baseline rule for where webhooks may go: absolute http(s) URLs without embedded credentials. */
import { UnsafeDestinationError } from '../errors/errors.ts';

export async function checkUrlShape(url: string): Promise<void> {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new UnsafeDestinationError(`url "${url.slice(0, 200)}" is not an absolute URL`);
  }
  if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') throw new UnsafeDestinationError('url must use http or https');
  if (parsed.username || parsed.password) throw new UnsafeDestinationError('url must not carry credentials; the webhook signature authenticates us');
}
