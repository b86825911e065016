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
 * Everything but `createDestinationGuard`'s default resolver is pure.
 */
import { BlockList, isIP, type LookupFunction } from 'node:net';
import { lookup as dnsLookup } from 'node:dns/promises';
import type { LookupAddress } from 'node:dns';
import { checkUrlShape } from '../delivery/destination.ts';
import type { HttpSender } from '../delivery/http-sender.ts';
import { UnsafeDestinationError } from '../errors/errors.ts';
import { withTimeout } from '../util/timeout.ts';
import { ConfigError } from '../config/config.ts';

type Family = 'ipv4' | 'ipv6';
type Range = { cidr: string; reason: string };

/** Ranges webhooks never go to (unless allow-listed), most specific first: the first match names the reason. */
export const BLOCKED_RANGES: readonly Range[] = [
  // Cloud metadata services (instance credentials live there): named before their wider ranges.
  { cidr: '169.254.169.254/32', reason: 'cloud metadata service' },
  { cidr: '169.254.170.2/32', reason: 'cloud metadata service (AWS ECS)' },
  { cidr: '100.100.100.200/32', reason: 'cloud metadata service (Alibaba Cloud)' },
  { cidr: 'fd00:ec2::254/128', reason: 'cloud metadata service (AWS, IPv6)' },
  // IPv4
  { cidr: '0.0.0.0/8', reason: 'unspecified ("this network")' },
  { cidr: '10.0.0.0/8', reason: 'private network (RFC 1918)' },
  { cidr: '100.64.0.0/10', reason: 'carrier-grade NAT shared space (RFC 6598)' },
  { cidr: '127.0.0.0/8', reason: 'loopback' },
  { cidr: '169.254.0.0/16', reason: 'link-local' },
  { cidr: '172.16.0.0/12', reason: 'private network (RFC 1918)' },
  { cidr: '192.0.0.0/24', reason: 'IETF protocol assignments' },
  { cidr: '192.0.2.0/24', reason: 'documentation (TEST-NET-1)' },
  { cidr: '192.88.99.0/24', reason: '6to4 relay anycast' },
  { cidr: '192.168.0.0/16', reason: 'private network (RFC 1918)' },
  { cidr: '198.18.0.0/15', reason: 'benchmarking' },
  { cidr: '198.51.100.0/24', reason: 'documentation (TEST-NET-2)' },
  { cidr: '203.0.113.0/24', reason: 'documentation (TEST-NET-3)' },
  { cidr: '224.0.0.0/4', reason: 'multicast' },
  { cidr: '255.255.255.255/32', reason: 'broadcast' },
  { cidr: '240.0.0.0/4', reason: 'reserved' },
  // IPv6
  { cidr: '::/128', reason: 'unspecified' },
  { cidr: '::1/128', reason: 'loopback' },
  { cidr: '::/96', reason: 'IPv4-compatible IPv6 (deprecated)' },
  { cidr: '::ffff:0:0:0/96', reason: 'IPv4-translated IPv6' },
  { cidr: '64:ff9b:1::/48', reason: 'local-use NAT64' },
  { cidr: '100::/64', reason: 'discard-only' },
  { cidr: '2001::/23', reason: 'IETF protocol assignments (incl. Teredo)' },
  { cidr: '2001:db8::/32', reason: 'documentation' },
  { cidr: '3fff::/20', reason: 'documentation' },
  { cidr: 'fc00::/7', reason: 'unique local address (private)' },
  { cidr: 'fe80::/10', reason: 'link-local' },
  { cidr: 'fec0::/10', reason: 'site-local (deprecated)' },
  { cidr: 'ff00::/8', reason: 'multicast' },
];

export type Classification = { blocked: false } | { blocked: true; reason: string };

type CompiledRange = { list: BlockList; family: Family; reason: string };

const COMPILED: CompiledRange[] = BLOCKED_RANGES.map((r) => {
  const { address, prefix, family } = parseCidr(r.cidr);
  const list = new BlockList();
  list.addSubnet(address, prefix, family);
  return { list, family, reason: r.reason };
});

/** `a.b.c.d/n`, `v6/n`, or a single address (a /32 or /128). Throws on anything else. */
export function parseCidr(spec: string): { address: string; prefix: number; family: Family } {
  const s = spec.trim();
  const slash = s.indexOf('/');
  const address = stripBrackets(slash < 0 ? s : s.slice(0, slash));
  const kind = isIP(address);
  if (kind === 0) throw new Error(`"${spec}" is not a CIDR range (e.g. 10.0.0.0/8, fd00::/8, 127.0.0.1)`);
  const family: Family = kind === 4 ? 'ipv4' : 'ipv6';
  const max = kind === 4 ? 32 : 128;
  const prefixText = slash < 0 ? String(max) : s.slice(slash + 1);
  if (!/^\d{1,3}$/.test(prefixText) || Number(prefixText) > max) throw new Error(`"${spec}": prefix must be 0-${max}`);
  return { address, prefix: Number(prefixText), family };
}

/** The allow-list, from CIDR strings. Throws ConfigError naming the bad entry. */
export function parseAllowList(cidrs: readonly string[]): BlockList {
  const list = new BlockList();
  for (const c of cidrs) {
    try {
      const { address, prefix, family } = parseCidr(c);
      list.addSubnet(address, prefix, family);
    } catch (err) {
      throw new ConfigError(`CARTEIRO_ALLOW_PRIVATE_NETWORKS: ${(err as Error).message}`);
    }
  }
  return list;
}

/** Whether an IP address is one webhooks must not reach, and why. Not an IP address: blocked. */
export function classifyAddress(input: string): Classification {
  const address = stripZone(stripBrackets(input));
  const kind = isIP(address);
  if (kind === 4) return classifyIn(address, 'ipv4');
  if (kind !== 6) return { blocked: true, reason: 'not an IP address' };
  const embedded = embeddedIPv4(address);
  if (embedded) {
    const inner = classifyIn(embedded.ipv4, 'ipv4');
    // A mapped address IS its IPv4 address; NAT64/6to4 reach theirs through a gateway.
    if (embedded.kind === 'IPv4-mapped') return inner.blocked ? { blocked: true, reason: `${inner.reason} (IPv4-mapped ${embedded.ipv4})` } : inner;
    if (inner.blocked) return { blocked: true, reason: `${inner.reason} (${embedded.kind} of ${embedded.ipv4})` };
  }
  return classifyIn(address, 'ipv6');
}

function classifyIn(address: string, family: Family): Classification {
  for (const r of COMPILED) if (r.family === family && r.list.check(address, family)) return { blocked: true, reason: r.reason };
  return { blocked: false };
}

/** Allowed when the address itself, or the IPv4 address it embeds, is in the allow-list. */
export function isAllowListed(input: string, allow: BlockList): boolean {
  const address = stripZone(stripBrackets(input));
  const kind = isIP(address);
  if (kind === 0) return false;
  if (allow.check(address, kind === 4 ? 'ipv4' : 'ipv6')) return true;
  const embedded = kind === 6 ? embeddedIPv4(address) : null;
  return embedded !== null && allow.check(embedded.ipv4, 'ipv4');
}

/** Why an address must not be connected to under this allow-list, or null when it may be. */
export function blockedReason(address: string, allow: BlockList): string | null {
  const c = classifyAddress(address);
  if (!c.blocked) return null;
  return isAllowListed(address, allow) ? null : c.reason;
}

/** The host of a URL as WHATWG parses it (IPv6 without brackets), or null for an unparsable URL. */
export function urlHost(url: string): string | null {
  try {
    return stripBrackets(new URL(url).hostname);
  } catch {
    return null;
  }
}

/** The IPv4 address inside an IPv4-mapped, NAT64 (64:ff9b::/96) or 6to4 (2002::/16) IPv6 address. */
export function embeddedIPv4(ipv6: string): { kind: 'IPv4-mapped' | 'NAT64' | '6to4'; ipv4: string } | null {
  const b = ipv6Bytes(ipv6);
  if (!b) return null;
  const zeros = (from: number, to: number) => b.slice(from, to).every((x) => x === 0);
  const quad = (at: number) => b.slice(at, at + 4).join('.');
  if (zeros(0, 10) && b[10] === 0xff && b[11] === 0xff) return { kind: 'IPv4-mapped', ipv4: quad(12) };
  if (b[0] === 0x00 && b[1] === 0x64 && b[2] === 0xff && b[3] === 0x9b && zeros(4, 12)) return { kind: 'NAT64', ipv4: quad(12) };
  if (b[0] === 0x20 && b[1] === 0x02) return { kind: '6to4', ipv4: quad(2) };
  return null;
}

/** 16 bytes of an IPv6 address (any textual form, including a trailing dotted quad). */
export function ipv6Bytes(input: string): number[] | null {
  let s = stripZone(stripBrackets(input));
  if (isIP(s) !== 6) return null;
  const dotted = /(\d+)\.(\d+)\.(\d+)\.(\d+)$/.exec(s);
  if (dotted) {
    const [a, b, c, d] = dotted.slice(1).map(Number) as [number, number, number, number];
    s = s.slice(0, dotted.index) + ((a << 8) | b).toString(16) + ':' + ((c << 8) | d).toString(16);
  }
  const [head, tail] = s.includes('::') ? (s.split('::') as [string, string]) : [s, undefined];
  const groups = (part: string | undefined) => (part ? part.split(':') : []);
  const h = groups(head);
  const t = groups(tail);
  const all = tail === undefined ? h : [...h, ...Array(8 - h.length - t.length).fill('0'), ...t];
  if (all.length !== 8) return null;
  return all.flatMap((g) => {
    const v = parseInt(g, 16);
    return [v >> 8, v & 0xff];
  });
}

function stripBrackets(host: string): string {
  return host.startsWith('[') && host.endsWith(']') ? host.slice(1, -1) : host;
}

function stripZone(address: string): string {
  const pct = address.indexOf('%');
  return pct < 0 ? address : address.slice(0, pct);
}

// --- the guard ------------------------------------------------------------------------------------

export type Resolver = (hostname: string) => Promise<{ address: string; family: number }[]>;

export const systemResolver: Resolver = (hostname) => dnsLookup(hostname, { all: true, verbatim: true });

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
  const resolve = opts.resolve ?? systemResolver;
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
        if (options?.all) callback(null, allowed.map((a): LookupAddress => ({ address: a.address, family: a.family })));
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
    async post(url, body, headers) {
      const reason = literalVerdict(url);
      if (reason) return { kind: 'network-error', error: `${BLOCKED_ERROR_CODE}: ${reason}`, durationMs: 0 };
      return sender.post(url, body, headers);
    },
    close: () => sender.close(),
  };
}

