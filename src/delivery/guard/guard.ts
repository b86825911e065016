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
 * Names are resolved with c-ares (`createDnsResolver`), not `dns.lookup`: getaddrinfo runs on libuv's
 * small shared threadpool, so a few names whose DNS silently drops queries held every thread and made
 * all other tenants' lookups queue behind them. c-ares is asynchronous on the event loop; a dead DNS
 * only delays (and, bounded, fails) its own names.
 *
 * Everything but `createDnsResolver` is pure.
 */
import { BlockList, isIP, type LookupFunction } from 'node:net';
import { Resolver as DnsResolver } from 'node:dns/promises';
import type { LookupAddress, RecordWithTtl } from 'node:dns';
import { readFileSync } from 'node:fs';
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

// --- DNS resolution ------------------------------------------------------------------------------

export type ResolvedAddress = { address: string; family: number };
export type Resolver = (hostname: string) => Promise<ResolvedAddress[]>;

export type DnsResolverOptions = {
  /** DNS servers (`ip` or `ip:port`); default: the system's (resolv.conf). Tests use a loopback server. */
  servers?: readonly string[];
  /** Consulted before DNS, read once (default /etc/hosts). */
  hostsFile?: string;
};

// One c-ares try waits ~1 s (Node checks c-ares timeouts on a 1 s tick, so in practice 1-2 s); a
// second try survives one lost UDP packet. The per-lookup deadline bounds the whole thing however many
// nameservers resolv.conf lists (c-ares tries each in turn). A healthy resolver answers in ms.
const DNS_TRY_TIMEOUT_MS = 1_000;
const DNS_TRIES = 2;
const DNS_LOOKUP_DEADLINE_MS = 3_000;
// Answers are kept for their TTL, at most a minute (a moved endpoint is followed soon enough); a
// failure for 5 s, so a dead DNS is asked once per 5 s, not once per attempt, yet recovers quickly.
const DNS_MAX_TTL_MS = 60_000;
const DNS_NEGATIVE_TTL_MS = 5_000;
const DNS_CACHE_LIMIT = 10_000;
// c-ares failures that mean "no such address" rather than "could not find out".
const NO_RECORDS = new Set(['ENOTFOUND', 'ENODATA']);

const LOOPBACK: readonly ResolvedAddress[] = [
  { address: '127.0.0.1', family: 4 },
  { address: '::1', family: 6 },
];

type Answer = { ok: true; addresses: ResolvedAddress[]; ttlMs: number } | { ok: false; code: string; ttlMs: number };

/**
 * Resolves A and AAAA with c-ares, after the hosts file. Concurrent lookups of one name share one
 * query; answers are cached (see above). Only finds addresses: the guard judges every one of them.
 */
export function createDnsResolver(opts: DnsResolverOptions = {}): Resolver {
  const dns = new DnsResolver({ timeout: DNS_TRY_TIMEOUT_MS, tries: DNS_TRIES, maxTimeout: DNS_TRY_TIMEOUT_MS });
  if (opts.servers) dns.setServers([...opts.servers]);
  let hosts: Map<string, ResolvedAddress[]> | undefined;
  const cache = createAnswerCache(DNS_CACHE_LIMIT);
  const inFlight = new Map<string, Promise<Answer>>();

  const singleFlight = (name: string): Promise<Answer> => {
    let pending = inFlight.get(name);
    if (!pending) {
      pending = queryDns(dns, name)
        .then((answer) => {
          cache.set(name, answer, Date.now());
          return answer;
        })
        .finally(() => inFlight.delete(name));
      inFlight.set(name, pending);
    }
    return pending;
  };

  return async (hostname) => {
    const family = isIP(hostname);
    if (family) return [{ address: hostname, family }]; // as dns.lookup does; callers normally catch these first
    const name = hostname.toLowerCase().replace(/\.$/, '');
    hosts ??= readHostsFile(opts.hostsFile ?? '/etc/hosts');
    const local = hosts.get(name) ?? (isLocalhostName(name) ? LOOPBACK : undefined);
    if (local) return local.map((a) => ({ ...a }));
    const answer = cache.get(name, Date.now()) ?? (await singleFlight(name));
    if (!answer.ok) throw Object.assign(new Error(`DNS lookup of ${hostname} failed`), { code: answer.code, hostname });
    return answer.addresses.map((a) => ({ ...a })); // copies: the cached answer is shared
  };
}

/** A and AAAA in parallel, each bounded by the deadline. Never rejects: failures are answers too. */
async function queryDns(dns: DnsResolver, name: string): Promise<Answer> {
  const timedOut = () => Object.assign(new Error(`DNS lookup of ${name} timed out`), { code: 'ETIMEOUT' });
  const [v4, v6] = await Promise.allSettled([
    withTimeout(dns.resolve4(name, { ttl: true }), DNS_LOOKUP_DEADLINE_MS, timedOut),
    withTimeout(dns.resolve6(name, { ttl: true }), DNS_LOOKUP_DEADLINE_MS, timedOut),
  ]);
  const records = [...fulfilled(v4, 4), ...fulfilled(v6, 6)];
  if (records.length > 0) {
    const ttlMs = Math.min(DNS_MAX_TTL_MS, ...records.map((r) => r.ttl * 1000));
    return { ok: true, addresses: records.map(({ address, family }) => ({ address, family })), ttlMs };
  }
  // Report a real failure (timeout, SERVFAIL…) over "no records" from the other family.
  const codes = [v4, v6].map((r) => (r.status === 'rejected' ? String((r.reason as { code?: string }).code ?? 'EUNKNOWN') : 'ENODATA'));
  const code = codes.find((c) => !NO_RECORDS.has(c)) ?? 'ENOTFOUND';
  return { ok: false, code, ttlMs: DNS_NEGATIVE_TTL_MS };
}

function fulfilled(result: PromiseSettledResult<RecordWithTtl[]>, family: number): (RecordWithTtl & { family: number })[] {
  return result.status === 'fulfilled' ? result.value.map((r) => ({ ...r, family })) : [];
}

/** Answers by name until they expire; bounded, dropping the oldest entry when full. */
function createAnswerCache(limit: number) {
  const entries = new Map<string, { answer: Answer; expiresAt: number }>();
  return {
    get(name: string, now: number): Answer | undefined {
      const entry = entries.get(name);
      if (entry && entry.expiresAt > now) return entry.answer;
      if (entry) entries.delete(name);
      return undefined;
    },
    set(name: string, answer: Answer, now: number): void {
      if (answer.ttlMs <= 0) return; // TTL 0: the owner asked not to be cached
      entries.delete(name);
      if (entries.size >= limit) entries.delete(entries.keys().next().value as string);
      entries.set(name, { answer, expiresAt: now + answer.ttlMs });
    },
  };
}

/** RFC 6761: `localhost` and `*.localhost` are loopback and never asked of DNS. */
function isLocalhostName(name: string): boolean {
  return name === 'localhost' || name.endsWith('.localhost');
}

/**
 * The hosts file, read once and synchronously (it is tiny, and reading it on the threadpool would
 * reintroduce the queue this module avoids). getaddrinfo consulted it before DNS ("hosts: files dns").
 * Unreadable: none.
 */
function readHostsFile(path: string): Map<string, ResolvedAddress[]> {
  try {
    return parseHosts(readFileSync(path, 'utf8'));
  } catch {
    return new Map();
  }
}

/** `address name [alias…]` lines, `#` comments; every address a name is listed with, in file order. */
function parseHosts(text: string): Map<string, ResolvedAddress[]> {
  const byName = new Map<string, ResolvedAddress[]>();
  for (const line of text.split('\n')) {
    const [address = '', ...names] = line.replace(/#.*/, '').trim().split(/\s+/);
    const family = isIP(address);
    if (!family) continue;
    for (const name of names) {
      const key = name.toLowerCase();
      const list = byName.get(key) ?? [];
      if (!list.some((a) => a.address === address)) list.push({ address, family });
      byName.set(key, list);
    }
  }
  return byName;
}

// --- the guard ------------------------------------------------------------------------------------

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
