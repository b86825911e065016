/**
 * SSRF guard: webhooks go only to public unicast addresses, unless an operator opens specific ranges
 * (CARTEIRO_ALLOW_PRIVATE_NETWORKS, comma-separated CIDRs).
 *
 * Checked twice:
 * - at registration (POST/PATCH /endpoints): the URL's host is resolved and EVERY address must pass;
 * - at connect time, in the delivery client's DNS lookup: blocked answers are dropped and, if none is
 *   left, the connection fails with "destination resolves to a blocked address". The socket connects
 *   to an address this lookup returned, so a DNS answer that changed since registration (rebinding)
 *   is caught. IP-literal hosts never reach a DNS lookup; `guardSender` checks those before sending.
 *
 * Host forms: WHATWG URL parsing (used everywhere here) already turns decimal (`2130706433`), octal
 * (`0177.0.0.1`), hex (`0x7f.1`) and short (`127.1`) IPv4 hosts into dotted quads and compresses IPv6;
 * IPv4-mapped (`::ffff:a.b.c.d`), NAT64 (`64:ff9b::/96`) and 6to4 (`2002::/16`) IPv6 addresses are
 * judged by the IPv4 address they embed.
 *
 * Addresses are classified in addresses.ts; names are resolved by dns.ts.
 */
import { isIP, type LookupFunction } from 'node:net';
import type { LookupAddress } from 'node:dns';
import { checkUrlShape } from '../destination.ts';
import type { HttpSender } from '../http-sender.ts';
import { UnsafeDestinationError } from '../../errors/errors.ts';
import { withTimeout } from '../../util/timeout.ts';
import { blockedReason, parseAllowList, urlHost } from './addresses.ts';
import { createDnsResolver, type Resolver } from './dns.ts';

export type DestinationGuard = {
  /**
   * Registration check: http(s), no credentials, and every address the host resolves to allowed.
   * `field` is the request field the URL came from (default `url`), named in the error.
   */
  checkUrl(url: string, field?: string): Promise<void>;
  /** For undici's `connect` options: a DNS lookup that drops blocked answers, failing when none is left. */
  lookup: LookupFunction;
  /** The reason a URL with an IP-literal host must not be sent to; null for allowed IPs and for host names. */
  literalBlockedReason(url: string): string | null;
  blockedReason(address: string): string | null;
};

const RESOLVE_TIMEOUT_MS = 5_000;
export const BLOCKED_ERROR_CODE = 'CARTEIRO_BLOCKED_DESTINATION';

export function createDestinationGuard(opts: { allow: readonly string[]; resolve?: Resolver }): DestinationGuard {
  const allow = parseAllowList(opts.allow);
  const resolve = opts.resolve ?? createDnsResolver();
  const reasonFor = (address: string) => blockedReason(address, allow);

  async function checkUrl(url: string, field = 'url'): Promise<void> {
    await checkUrlShape(url, field);
    const host = urlHost(url) as string;
    if (isIP(host)) {
      const reason = reasonFor(host);
      if (reason) throw new UnsafeDestinationError(`${field} host ${host} is a blocked address (${reason})`, field);
      return;
    }
    let addresses: { address: string }[];
    try {
      addresses = await withTimeout(resolve(host), RESOLVE_TIMEOUT_MS, () => Object.assign(new Error(`resolving ${host} timed out`), { code: 'ETIMEOUT' }));
    } catch (err) {
      const code = (err as { code?: string }).code;
      throw new UnsafeDestinationError(`${field} host "${host}" does not resolve${code ? ` (${code})` : ''}`, field);
    }
    if (addresses.length === 0) throw new UnsafeDestinationError(`${field} host "${host}" does not resolve`, field);
    for (const a of addresses) {
      const reason = reasonFor(a.address);
      if (reason) throw new UnsafeDestinationError(`${field} host "${host}" resolves to a blocked address: ${a.address} (${reason})`, field);
    }
  }

  const lookup = ((hostname: string, options: { family?: number | string; all?: boolean }, callback: (...args: unknown[]) => void) => {
    const family = options?.family === 4 || options?.family === 'IPv4' ? 4 : options?.family === 6 || options?.family === 'IPv6' ? 6 : 0;
    resolve(hostname).then(
      (found) => {
        const candidates = family ? found.filter((a) => a.family === family) : found;
        const allowed = candidates.filter((a) => !reasonFor(a.address));
        if (allowed.length === 0) {
          const first = candidates[0];
          const detail = first ? `${first.address} (${reasonFor(first.address)})` : 'no address';
          const err = Object.assign(new Error(`destination resolves to a blocked address: ${hostname} → ${detail}`), { code: BLOCKED_ERROR_CODE, hostname });
          callback(err);
          return;
        }
        if (options?.all)
          callback(
            null,
            allowed.map((a): LookupAddress => ({ address: a.address, family: a.family })),
          );
        else callback(null, (allowed[0] as LookupAddress).address, (allowed[0] as LookupAddress).family);
      },
      (err) => callback(err),
    );
  }) as unknown as LookupFunction;

  function literalBlockedReason(url: string): string | null {
    const host = urlHost(url);
    if (host === null || !isIP(host)) return null;
    const reason = reasonFor(host);
    return reason ? `destination is a blocked address: ${host} (${reason})` : null;
  }

  return { checkUrl, lookup, literalBlockedReason, blockedReason: reasonFor };
}

const VERDICT_CACHE_LIMIT = 10_000;

/**
 * Wraps the delivery client so URLs whose host is a blocked IP literal (no DNS lookup happens for
 * those) fail as an attempt with a clear error instead of being sent.
 */
export function guardSender(sender: HttpSender, guard: DestinationGuard): HttpSender {
  // The verdict on a URL never changes (the lists are fixed at start), and every delivery to an
  // endpoint repeats its URL: remember it rather than re-check the block list per request.
  const verdicts = new Map<string, string | null>();
  const literalVerdict = (url: string): string | null => {
    let reason = verdicts.get(url);
    if (reason === undefined) {
      reason = guard.literalBlockedReason(url);
      if (verdicts.size >= VERDICT_CACHE_LIMIT) verdicts.clear();
      verdicts.set(url, reason);
    }
    return reason;
  };
  return {
    async post(url, body, headers, opts) {
      const reason = literalVerdict(url);
      if (reason) return { kind: 'network-error', error: `${BLOCKED_ERROR_CODE}: ${reason}`, durationMs: 0 };
      return sender.post(url, body, headers, opts);
    },
    cancelAll: (reason) => sender.cancelAll(reason),
    close: () => sender.close(),
  };
}
