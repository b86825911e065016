/**
 * Name resolution for the guard and the delivery client, with c-ares rather than `dns.lookup`:
 * getaddrinfo runs on libuv's small shared threadpool, so a few names whose DNS silently drops queries
 * held every thread and made all other tenants' lookups queue behind them. c-ares is asynchronous on
 * the event loop; a dead DNS only delays (and, bounded, fails) its own names.
 */
import { isIP } from 'node:net';
import { Resolver as DnsResolver } from 'node:dns/promises';
import type { RecordWithTtl } from 'node:dns';
import { readFileSync } from 'node:fs';
import { withTimeout } from '../../util/timeout.ts';

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
