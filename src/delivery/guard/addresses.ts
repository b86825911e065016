/**
 * Addresses webhooks must not reach: the blocked ranges, CIDR allow-lists, and how a host or address
 * is classified (IPv4-mapped, NAT64 and 6to4 IPv6 addresses are judged by the IPv4 address they
 * embed). Pure. The guard (guard.ts) says where these are checked.
 */
import { BlockList, isIP } from 'node:net';
import { ConfigError } from '../../config/config.ts';

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
