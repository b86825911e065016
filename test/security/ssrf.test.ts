/**
 * SSRF: address classification (pure), the registration check, the connect-time lookup (DNS
 * rebinding), blocked IP literals, and redirects never followed — unit level and through a running
 * Carteiro whose allow-list is empty. Also DNS resolution itself, against a DNS server on loopback:
 * one name's dead DNS must not delay other names (tenant isolation).
 */
import { after, before, describe, test } from 'node:test';
import type { TestContext } from 'node:test';
import assert from 'node:assert/strict';
import dgram from 'node:dgram';
import { execFileSync } from 'node:child_process';
import { closeSync, constants as fsConstants, mkdtempSync, openSync, rmSync, writeFileSync } from 'node:fs';
import { access, open } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { blockedReason, classifyAddress, embeddedIPv4, ipv6Bytes, parseAllowList, parseCidr, urlHost } from '../../src/delivery/guard/addresses.ts';
import { createDnsResolver, type Resolver } from '../../src/delivery/guard/dns.ts';
import { createDestinationGuard, guardSender } from '../../src/delivery/guard/guard.ts';
import { createHttpSender } from '../../src/delivery/http-sender.ts';
import { UnsafeDestinationError } from '../../src/errors/errors.ts';
import { ConfigError } from '../../src/config/config.ts';
import { startCarteiro, createEndpoint, trigger, eventually, type TestCarteiro } from '../support/carteiro.ts';
import { startReceiver } from '../support/receiver.ts';

describe('address classification', () => {
  const blocked: [string, RegExp][] = [
    ['127.0.0.1', /loopback/],
    ['127.255.255.254', /loopback/],
    ['10.1.2.3', /private/],
    ['172.16.0.1', /private/],
    ['172.31.255.255', /private/],
    ['192.168.1.1', /private/],
    ['100.64.0.1', /carrier-grade NAT/],
    ['100.127.255.255', /carrier-grade NAT/],
    ['169.254.169.254', /cloud metadata/],
    ['169.254.170.2', /cloud metadata/],
    ['100.100.100.200', /cloud metadata/],
    ['169.254.1.1', /link-local/],
    ['0.0.0.0', /unspecified/],
    ['0.1.2.3', /unspecified/],
    ['224.0.0.1', /multicast/],
    ['239.255.255.250', /multicast/],
    ['255.255.255.255', /broadcast/],
    ['240.0.0.1', /reserved/],
    ['192.0.2.10', /documentation/],
    ['198.18.0.1', /benchmarking/],
    ['::1', /loopback/],
    ['::', /unspecified/],
    ['::ffff:127.0.0.1', /loopback.*IPv4-mapped/],
    ['::ffff:7f00:1', /loopback.*IPv4-mapped/],
    ['0:0:0:0:0:ffff:a9fe:a9fe', /cloud metadata/],
    ['::ffff:10.0.0.1', /private/],
    ['::127.0.0.1', /IPv4-compatible/],
    ['64:ff9b::7f00:1', /loopback.*NAT64/],
    ['2002:c0a8:0101::1', /private.*6to4/],
    ['fd00::1', /unique local/],
    ['fc00::1', /unique local/],
    ['fd00:ec2::254', /cloud metadata/],
    ['fe80::1', /link-local/],
    ['fe80::1%eth0', /link-local/],
    ['ff02::1', /multicast/],
    ['2001:db8::1', /documentation/],
    ['2001::1', /Teredo/],
    ['[::1]', /loopback/],
    ['localhost', /not an IP address/],
  ];
  for (const [address, reason] of blocked) {
    test(`${address} is blocked`, () => {
      const c = classifyAddress(address);
      assert.equal(c.blocked, true);
      assert.match((c as { reason: string }).reason, reason);
    });
  }

  for (const address of [
    '8.8.8.8',
    '1.1.1.1',
    '93.184.216.34',
    '100.63.255.255',
    '100.128.0.0',
    '172.15.255.255',
    '172.32.0.0',
    '169.253.0.1',
    '2606:4700:4700::1111',
    '2a00:1450:4001::200e',
    '::ffff:8.8.8.8',
    '64:ff9b::808:808',
    '2002:808:808::1',
  ]) {
    test(`${address} is public`, () => assert.deepEqual(classifyAddress(address), { blocked: false }));
  }

  test('IPv6 text forms expand to the same 16 bytes', () => {
    const expected = [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 127, 0, 0, 1];
    assert.deepEqual(ipv6Bytes('::ffff:127.0.0.1'), expected);
    assert.deepEqual(ipv6Bytes('::ffff:7f00:1'), expected);
    assert.deepEqual(ipv6Bytes('0:0:0:0:0:ffff:7f00:0001'), expected);
    assert.deepEqual(ipv6Bytes('[::ffff:7f00:1]'), expected);
    assert.equal(ipv6Bytes('127.0.0.1'), null);
    assert.deepEqual(embeddedIPv4('2002:0a00:0001::'), { kind: '6to4', ipv4: '10.0.0.1' });
    assert.equal(embeddedIPv4('2606:4700::1'), null);
  });

  test('WHATWG URL parsing normalises decimal, octal, hex and short IPv4 hosts, and IPv6 forms', () => {
    const loopback = [
      'http://2130706433/',
      'http://0177.0.0.1/',
      'http://0x7f.0.0.1/',
      'http://0x7f000001/',
      'http://127.1/',
      'http://017700000001/',
      'http://0177.1/',
    ];
    for (const url of loopback) {
      assert.equal(urlHost(url), '127.0.0.1', url);
      assert.match(blockedReason(urlHost(url) as string, parseAllowList([])) as string, /loopback/, url);
    }
    assert.equal(urlHost('http://0/'), '0.0.0.0');
    assert.equal(urlHost('http://[::ffff:127.0.0.1]:8080/x'), '::ffff:7f00:1');
    assert.equal(urlHost('http://[0:0:0:0:0:0:0:1]/'), '::1');
    assert.equal(urlHost('http://2852039166/'), '169.254.169.254');
    assert.equal(urlHost('http://1.2.3.4.5/'), null, 'not a valid URL');
  });

  test('allow-list: CIDRs and single addresses; mapped addresses follow their IPv4 address', () => {
    const allow = parseAllowList(['127.0.0.0/8', '::1/128', '10.0.0.5', 'fd12::/16']);
    assert.equal(blockedReason('127.0.0.1', allow), null);
    assert.equal(blockedReason('::1', allow), null);
    assert.equal(blockedReason('::ffff:127.0.0.1', allow), null);
    assert.equal(blockedReason('10.0.0.5', allow), null);
    assert.match(blockedReason('10.0.0.6', allow) as string, /private/);
    assert.equal(blockedReason('fd12:3456::1', allow), null);
    assert.match(blockedReason('fd00::1', allow) as string, /unique local/);
    assert.match(blockedReason('169.254.169.254', allow) as string, /metadata/);
    assert.equal(blockedReason('8.8.8.8', allow), null);
  });

  test('a malformed allow-list entry is a configuration error naming it', () => {
    assert.throws(
      () => parseAllowList(['10.0.0.0/33']),
      (err: Error) => err instanceof ConfigError && /10\.0\.0\.0\/33/.test(err.message),
    );
    assert.throws(() => parseAllowList(['intranet']), ConfigError);
    assert.deepEqual(parseCidr('[::1]'), { address: '::1', prefix: 128, family: 'ipv6' });
  });
});

/** A resolver whose answers the test scripts, standing in for DNS. */
function scriptedResolver(answers: Record<string, string[] | (() => string[])>): Resolver {
  return async (host) => {
    const a = answers[host];
    if (!a) throw Object.assign(new Error(`getaddrinfo ENOTFOUND ${host}`), { code: 'ENOTFOUND' });
    return (typeof a === 'function' ? a() : a).map((address) => ({ address, family: address.includes(':') ? 6 : 4 }));
  };
}

describe('registration check', () => {
  const guard = createDestinationGuard({
    allow: [],
    resolve: scriptedResolver({
      'hooks.example.com': ['93.184.216.34', '2606:2800:220:1:248:1893:25c8:1946'],
      'internal.example.com': ['10.0.0.7'],
      'mixed.example.com': ['93.184.216.34', '127.0.0.1'],
      'metadata.example.com': ['169.254.169.254'],
      'v6private.example.com': ['fd00::5'],
    }),
  });
  const refuses = async (url: string, message: RegExp) => {
    await assert.rejects(guard.checkUrl(url), (err: Error) => err instanceof UnsafeDestinationError && message.test(err.message), url);
  };

  test('public hosts pass', async () => {
    await guard.checkUrl('https://hooks.example.com/webhooks');
    await guard.checkUrl('http://93.184.216.34:8080/x');
    await guard.checkUrl('https://[2606:4700:4700::1111]/');
  });

  test('hosts resolving to blocked addresses are refused, naming the address and why', async () => {
    await refuses('https://internal.example.com/', /10\.0\.0\.7 \(private/);
    await refuses('https://mixed.example.com/', /127\.0\.0\.1 \(loopback\)/);
    await refuses('https://metadata.example.com/latest/meta-data', /cloud metadata/);
    await refuses('https://v6private.example.com/', /unique local/);
  });

  test('IP-literal hosts in every notation are refused', async () => {
    for (const url of [
      'http://127.0.0.1/',
      'http://2130706433/',
      'http://0177.0.0.1/',
      'http://0x7f.1/',
      'http://[::1]/',
      'http://[::ffff:127.0.0.1]/',
      'http://169.254.169.254/',
      'http://[fd00::1]/',
      'http://0.0.0.0:8080/',
      'http://224.0.0.1/',
      'http://100.64.0.1/',
    ]) {
      await refuses(url, /blocked address/);
    }
  });

  test('only http(s), no credentials, must resolve', async () => {
    await refuses('ftp://hooks.example.com/', /http or https/);
    await refuses('file:///etc/passwd', /http or https/);
    await refuses('gopher://hooks.example.com/', /http or https/);
    await refuses('https://user:pass@hooks.example.com/', /credentials/);
    await refuses('not a url', /not an absolute URL/);
    await refuses('https://nowhere.example.com/', /does not resolve \(ENOTFOUND\)/);
  });

  test('the allow-list opens exactly its ranges', async () => {
    const open = createDestinationGuard({
      allow: ['10.0.0.0/24'],
      resolve: scriptedResolver({ 'internal.example.com': ['10.0.0.7'], 'other.example.com': ['10.0.1.7'] }),
    });
    await open.checkUrl('https://internal.example.com/');
    await open.checkUrl('http://10.0.0.200/');
    await assert.rejects(open.checkUrl('https://other.example.com/'), UnsafeDestinationError);
    await assert.rejects(open.checkUrl('http://127.0.0.1/'), UnsafeDestinationError);
  });
});

describe('connect time', () => {
  test('lookup drops blocked answers and fails when none is left, in both callback forms', async () => {
    const guard = createDestinationGuard({ allow: [], resolve: scriptedResolver({ 'a.test': ['127.0.0.1', '93.184.216.34'], 'b.test': ['10.0.0.1'] }) });
    const call = (host: string, options: object) =>
      new Promise<unknown[]>((resolve) =>
        (guard.lookup as unknown as (h: string, o: object, cb: (...a: unknown[]) => void) => void)(host, options, (...args) => resolve(args)),
      );
    assert.deepEqual(await call('a.test', { all: true }), [null, [{ address: '93.184.216.34', family: 4 }]]);
    assert.deepEqual(await call('a.test', {}), [null, '93.184.216.34', 4]);
    const [err] = await call('b.test', { all: true });
    assert.match((err as Error).message, /destination resolves to a blocked address: b\.test → 10\.0\.0\.1 \(private/);
    const [notFound] = await call('c.test', {});
    assert.equal((notFound as { code: string }).code, 'ENOTFOUND');
  });

  test('a DNS answer that changes after registration (rebinding) is caught when connecting', async (t: TestContext) => {
    const receiver = await startReceiver();
    t.after(() => receiver.close());
    const port = new URL(receiver.url).port;
    let answer = '93.184.216.34';
    const guard = createDestinationGuard({ allow: [], resolve: scriptedResolver({ 'rebind.test': () => [answer] }) });
    await guard.checkUrl(`http://rebind.test:${port}/hook`); // registration sees a public address
    answer = '127.0.0.1'; // …then the name points at the loopback receiver
    const sender = guardSender(
      createHttpSender({ connectionsPerOrigin: 2, timeoutMs: 30_000, responseBodyLimitBytes: 1024, connect: { lookup: guard.lookup } }),
      guard,
    );
    t.after(() => sender.close());
    const result = await sender.post(`http://rebind.test:${port}/hook`, '{}', {});
    assert.equal(result.kind, 'network-error');
    assert.match((result as { error: string }).error, /destination resolves to a blocked address: rebind\.test → 127\.0\.0\.1 \(loopback\)/);
    assert.equal(receiver.received.length, 0, 'nothing reached the receiver');
  });

  test('allow-listed names connect through the guarded lookup; blocked IP literals are never sent', async (t: TestContext) => {
    const receiver = await startReceiver();
    t.after(() => receiver.close());
    const port = new URL(receiver.url).port;
    const open = createDestinationGuard({ allow: ['127.0.0.0/8'], resolve: scriptedResolver({ 'local.test': ['127.0.0.1'] }) });
    const sender = guardSender(
      createHttpSender({ connectionsPerOrigin: 2, timeoutMs: 30_000, responseBodyLimitBytes: 1024, connect: { lookup: open.lookup } }),
      open,
    );
    t.after(() => sender.close());
    const ok = await sender.post(`http://local.test:${port}/`, '{}', {});
    assert.equal(ok.kind, 'response');
    assert.equal(receiver.received.length, 1);

    const closed = createDestinationGuard({ allow: [] });
    const strict = guardSender(
      createHttpSender({ connectionsPerOrigin: 2, timeoutMs: 30_000, responseBodyLimitBytes: 1024, connect: { lookup: closed.lookup } }),
      closed,
    );
    t.after(() => strict.close());
    for (const url of [receiver.url, `http://2130706433:${port}/`, `http://[::ffff:127.0.0.1]:${port}/`]) {
      const r = await strict.post(url, '{}', {});
      assert.equal(r.kind, 'network-error', url);
      assert.match((r as { error: string }).error, /blocked address: .*loopback/, url);
    }
    assert.equal(receiver.received.length, 1, 'no blocked request reached the receiver');
  });
});

describe('through Carteiro with an empty allow-list', () => {
  let c: TestCarteiro;
  before(async () => {
    // No retries: the blocked endpoints below fail once and stop, instead of retrying through shutdown.
    c = await startCarteiro({ env: { CARTEIRO_ALLOW_PRIVATE_NETWORKS: '', WEBHOOK_MAX_RETRIES: '0' } });
  });
  after(() => c.stop());

  test('POST and PATCH /endpoints refuse blocked destinations with 422', async () => {
    for (const url of [
      'http://127.0.0.1:9/hook',
      'http://localhost:9/hook',
      'http://2130706433/',
      'http://[::1]/',
      'http://[::ffff:127.0.0.1]/',
      'http://169.254.169.254/latest/meta-data/',
      'http://10.0.0.1/',
      'http://0.0.0.0/',
      'ftp://example.com/x',
    ]) {
      const res = await c.request('POST', 'endpoints', { name: 'x', url });
      assert.equal(res.status, 422, url);
      assert.equal(res.body.code, 'CARTEIRO_UNSAFE_DESTINATION', url);
    }
    const ep = await createEndpoint(c, { url: 'http://93.184.216.34/hook', events: ['nothing.ever'] });
    const patched = await c.request('PATCH', `endpoints/${ep.id}`, { url: 'http://[fd00::1]/' });
    assert.equal(patched.status, 422);
    assert.match(patched.body.message, /unique local/);
  });

  test('an endpoint whose host turns out blocked at connect time fails its attempts with the reason', async (t: TestContext) => {
    const receiver = await startReceiver();
    t.after(() => receiver.close());
    const port = new URL(receiver.url).port;
    // Rows written behind the API's back (as a DNS change would make them): the worker still refuses.
    const sql = c.services.ledger.sql;
    const [byName] = await sql<{ id: string }[]>`
      INSERT INTO webhook_endpoints (organization_id, name, url, events) VALUES ('00000000-0000-7000-8000-000000000000', 'by name', ${`http://localhost:${port}/`}, '{agent.deleted}') RETURNING id`;
    const [byIp] = await sql<{ id: string }[]>`
      INSERT INTO webhook_endpoints (organization_id, name, url, events) VALUES ('00000000-0000-7000-8000-000000000000', 'by ip', ${`http://127.0.0.1:${port}/`}, '{agent.deleted}') RETURNING id`;
    const eventId = await trigger(c, { event_type: 'agent.deleted', data: { agent_id: 'a1' } });
    const attempts = await eventually(
      async () => {
        const res = await c.request('GET', `events/${eventId}/attempts`);
        return res.body.data.length >= 2 ? res.body.data : null;
      },
      { what: 'two failed attempts' },
    );
    const byEndpoint = new Map(attempts.map((a: { webhook_endpoint_id: string; error: string }) => [a.webhook_endpoint_id, a]));
    const nameAttempt = byEndpoint.get(byName!.id) as { success: boolean; error: string };
    const ipAttempt = byEndpoint.get(byIp!.id) as { success: boolean; error: string };
    assert.equal(nameAttempt.success, false);
    assert.match(nameAttempt.error, /destination resolves to a blocked address: localhost → 127\.0\.0\.1 \(loopback\)/);
    assert.equal(ipAttempt.success, false);
    assert.match(ipAttempt.error, /blocked address: 127\.0\.0\.1 \(loopback\)/);
    assert.equal(receiver.received.length, 0);
  });
});

describe('redirects', () => {
  let c: TestCarteiro;
  before(async () => {
    c = await startCarteiro({ env: { WEBHOOK_MAX_RETRIES: '0' } });
  });
  after(() => c.stop());

  test('a 302 is a failed attempt and the redirect target is never contacted', async (t: TestContext) => {
    const target = await startReceiver();
    const redirector = await startReceiver(() => ({ status: 302, headers: { location: `${target.url}/stolen` } }));
    t.after(() => Promise.all([target.close(), redirector.close()]));
    await createEndpoint(c, { url: redirector.url, events: ['agent.updated'] });
    const id = await trigger(c, { event_type: 'agent.updated', data: { agent_id: 'a1' } });
    const status = await eventually(
      async () => {
        const res = await c.request('GET', `events/${id}/status`);
        return res.body.status === 'failed' ? res.body : null;
      },
      { what: 'the delivery to fail' },
    );
    assert.equal(status.deliveries[0].last_status_code, 302);
    assert.match(status.deliveries[0].last_error, /HTTP 302/);
    assert.equal(redirector.received.length, 1);
    assert.equal(target.received.length, 0);
  });
});

// --- DNS resolution ------------------------------------------------------------------------------

type Zone = Record<string, { a?: string[]; aaaa?: string[]; ttl?: number } | 'drop'>;
type DnsServer = { servers: string[]; queries(name: string, type: 'A' | 'AAAA'): number; close(): Promise<void> };

const TYPE_A = 1;
const TYPE_AAAA = 28;

/**
 * A DNS server on 127.0.0.1 (UDP, random port): answers the zone's names, NXDOMAIN for others, and
 * silently drops queries for names marked 'drop' — a customer's dead DNS. Counts the queries it sees.
 */
async function startDnsServer(zone: Zone): Promise<DnsServer> {
  const seen = new Map<string, number>();
  const socket = dgram.createSocket('udp4');
  socket.on('message', (query, peer) => {
    const { name, type, questionEnd } = parseQuestion(query);
    const key = `${name}/${type === TYPE_A ? 'A' : type === TYPE_AAAA ? 'AAAA' : type}`;
    seen.set(key, (seen.get(key) ?? 0) + 1);
    const entry = zone[name];
    if (entry === 'drop') return;
    const addresses = entry === undefined ? [] : ((type === TYPE_A ? entry.a : type === TYPE_AAAA ? entry.aaaa : undefined) ?? []);
    socket.send(dnsResponse(query, questionEnd, entry === undefined, type, addresses, entry?.ttl ?? 30), peer.port, peer.address);
  });
  await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', resolve));
  return {
    servers: [`127.0.0.1:${socket.address().port}`],
    queries: (name, type) => seen.get(`${name}/${type}`) ?? 0,
    close: () => new Promise<void>((resolve) => socket.close(() => resolve())),
  };
}

function parseQuestion(msg: Buffer): { name: string; type: number; questionEnd: number } {
  const labels: string[] = [];
  let at = 12;
  while (msg[at]) {
    const length = msg[at] as number;
    labels.push(msg.subarray(at + 1, at + 1 + length).toString('latin1'));
    at += length + 1;
  }
  return { name: labels.join('.').toLowerCase(), type: msg.readUInt16BE(at + 1), questionEnd: at + 5 };
}

function dnsResponse(query: Buffer, questionEnd: number, nxdomain: boolean, type: number, addresses: string[], ttl: number): Buffer {
  const header = Buffer.alloc(12);
  query.copy(header, 0, 0, 2); // the query's id
  header.writeUInt16BE(nxdomain ? 0x8183 : 0x8180, 2); // response, recursion desired+available, NXDOMAIN or NOERROR
  header.writeUInt16BE(1, 4);
  header.writeUInt16BE(addresses.length, 6);
  const answers = addresses.map((address) => {
    const rdata = Buffer.from(type === TYPE_A ? address.split('.').map(Number) : (ipv6Bytes(address) as number[]));
    const rr = Buffer.alloc(12);
    rr.writeUInt16BE(0xc00c, 0); // the name: a pointer to the question's
    rr.writeUInt16BE(type, 2);
    rr.writeUInt16BE(1, 4); // class IN
    rr.writeUInt32BE(ttl, 6);
    rr.writeUInt16BE(rdata.length, 10);
    return Buffer.concat([rr, rdata]);
  });
  return Buffer.concat([header, query.subarray(12, questionEnd), ...answers]);
}

/** The guard's connect-time lookup as a promise of its callback's arguments. */
function lookupVia(guard: { lookup: unknown }, host: string, options: object = { all: true }): Promise<unknown[]> {
  return new Promise((resolve) => (guard.lookup as (h: string, o: object, cb: (...a: unknown[]) => void) => void)(host, options, (...args) => resolve(args)));
}

/** Settles with `work`'s result, or with 'still waiting' after `ms`, so a stuck lookup fails an assertion instead of hanging. */
function within<T>(work: Promise<T>, ms: number): Promise<T | 'still waiting'> {
  return Promise.race([work, sleep(ms, 'still waiting' as const)]);
}

describe('DNS resolution (c-ares, against a DNS server on loopback)', () => {
  let dns: DnsServer;
  before(async () => {
    const zone: Zone = {
      'good.test': { a: ['93.184.216.34'], aaaa: ['2606:2800:220:1:248:1893:25c8:1946'], ttl: 30 },
      'shared.test': { a: ['93.184.216.34'], aaaa: ['2606:2800:220:1:248:1893:25c8:1946'], ttl: 30 },
      'uncached.test': { a: ['93.184.216.35'], ttl: 0 },
      'private.test': { a: ['93.184.216.34', '10.0.0.7'] },
    };
    for (let i = 1; i <= 8; i++) zone[`dead${i}.test`] = 'drop';
    dns = await startDnsServer(zone);
  });
  after(() => dns.close());

  test('names whose DNS drops queries delay only themselves, and fail within a bounded time', async () => {
    const guard = createDestinationGuard({ allow: [], resolve: createDnsResolver({ servers: dns.servers }) });
    const started = performance.now();
    // Eight endpoints with dead DNS (as in the audit), each looked up several times at once.
    const dead = Array.from({ length: 8 }, (_, i) =>
      [1, 2, 3].map(() =>
        guard.checkUrl(`https://dead${i + 1}.test/hook`).then(
          () => assert.fail('a dead name resolved'),
          (err: Error) => ({ err, ms: performance.now() - started }),
        ),
      ),
    ).flat();
    // All of them outstanding: every dead name asked.
    await eventually(() => Array.from({ length: 8 }, (_, i) => dns.queries(`dead${i + 1}.test`, 'A')).every((n) => n >= 1), { what: 'the dead names asked' });

    const t = performance.now();
    await guard.checkUrl('https://good.test/hook'); // registration
    const [err, addresses] = await lookupVia(guard, 'good.test'); // connect time
    const goodAt = performance.now();
    const goodMs = goodAt - t;
    assert.equal(err, null);
    assert.deepEqual(addresses, [
      { address: '93.184.216.34', family: 4 },
      { address: '2606:2800:220:1:248:1893:25c8:1946', family: 6 },
    ]);
    const failed = await Promise.all(dead);
    // Answered while the dead lookups were still pending (before the first of them gave up), not after them.
    const firstFailure = Math.min(...failed.map((f) => started + f.ms));
    assert.ok(goodAt < firstFailure, `a healthy name answered in ${goodMs.toFixed(0)} ms, after a dead lookup failed`);

    for (const { err: deadErr, ms } of failed) {
      assert.ok(deadErr instanceof UnsafeDestinationError);
      assert.match(deadErr.message, /does not resolve \(ETIMEOUT\)/);
      // Bounded by the resolver (3 s), well before the registration check's own 5 s give-up.
      assert.ok(ms < 4_000, `a dead lookup failed after ${ms.toFixed(0)} ms`);
    }
    // Three concurrent lookups of a dead name made one lookup: at most its two tries reached the server.
    assert.ok(dns.queries('dead1.test', 'A') <= 2, `dead1.test asked ${dns.queries('dead1.test', 'A')} times`);
    // …and its failure is remembered briefly: asking again fails at once, without a query.
    const asked = dns.queries('dead1.test', 'A');
    const again = performance.now();
    const [cached] = await lookupVia(guard, 'dead1.test');
    assert.equal((cached as { code: string }).code, 'ETIMEOUT');
    assert.ok(performance.now() - again < 2_000, 'not another resolver timeout (3 s)');
    assert.equal(dns.queries('dead1.test', 'A'), asked);
  });

  test('concurrent lookups of a name share one query; answers are cached for their TTL', async () => {
    const resolve = createDnsResolver({ servers: dns.servers });
    const answers = await Promise.all(Array.from({ length: 5 }, () => resolve('shared.test')));
    assert.equal(dns.queries('shared.test', 'A'), 1);
    assert.equal(dns.queries('shared.test', 'AAAA'), 1);
    for (const a of answers)
      assert.deepEqual(
        a.map((x) => x.address),
        ['93.184.216.34', '2606:2800:220:1:248:1893:25c8:1946'],
      );
    await resolve('SHARED.test.'); // same name: cached (TTL 30 s)
    assert.equal(dns.queries('shared.test', 'A'), 1);

    await resolve('uncached.test'); // TTL 0: not kept
    await resolve('uncached.test');
    assert.equal(dns.queries('uncached.test', 'A'), 2);

    for (let i = 0; i < 2; i++) await assert.rejects(resolve('missing.test'), { code: 'ENOTFOUND' }); // NXDOMAIN, remembered
    assert.equal(dns.queries('missing.test', 'A'), 1);
  });

  test('every resolved address is still judged', async () => {
    const guard = createDestinationGuard({ allow: [], resolve: createDnsResolver({ servers: dns.servers }) });
    await assert.rejects(guard.checkUrl('https://private.test/'), /resolves to a blocked address: 10\.0\.0\.7 \(private/);
    const [err, addresses] = await lookupVia(guard, 'private.test');
    assert.equal(err, null);
    assert.deepEqual(addresses, [{ address: '93.184.216.34', family: 4 }], 'the blocked answer is dropped at connect time');
  });

  test('hosts-file names, localhost and IP literals resolve without asking DNS', async (t: TestContext) => {
    const dir = mkdtempSync(join(tmpdir(), 'carteiro-hosts-'));
    t.after(() => rmSync(dir, { recursive: true, force: true }));
    const hostsFile = join(dir, 'hosts');
    writeFileSync(hostsFile, '# comment\n10.1.2.3   intranet.test  Alias.test # trailing\n::1 intranet.test\n\nnot-an-ip bogus.test\n');
    const resolve = createDnsResolver({ servers: dns.servers, hostsFile });
    assert.deepEqual(await resolve('intranet.test'), [
      { address: '10.1.2.3', family: 4 },
      { address: '::1', family: 6 },
    ]);
    assert.deepEqual(await resolve('alias.test'), [{ address: '10.1.2.3', family: 4 }]);
    const loopback = [
      { address: '127.0.0.1', family: 4 },
      { address: '::1', family: 6 },
    ];
    assert.deepEqual(await resolve('localhost'), loopback, 'not in this hosts file: loopback all the same (RFC 6761)');
    assert.deepEqual(await resolve('api.LOCALHOST.'), loopback);
    assert.deepEqual(await resolve('93.184.216.34'), [{ address: '93.184.216.34', family: 4 }]);
    await assert.rejects(resolve('bogus.test'), { code: 'ENOTFOUND' });
    for (const name of ['intranet.test', 'alias.test', 'localhost', 'api.localhost', '93.184.216.34']) assert.equal(dns.queries(name, 'A'), 0, name);

    const guard = createDestinationGuard({ allow: [], resolve });
    await assert.rejects(guard.checkUrl('http://intranet.test/'), /10\.1\.2\.3 \(private/);
    await assert.rejects(guard.checkUrl('http://localhost:9/'), /127\.0\.0\.1 \(loopback\)/);
  });
});

describe('lookups and the libuv threadpool', () => {
  // The audit's failure: getaddrinfo calls stuck on dead DNS held all of libuv's threads, so every
  // other lookup queued behind them. Here the threads are held by opens of a FIFO nobody writes to.
  test('a lookup through the default resolver answers while every threadpool thread is busy', async (t: TestContext) => {
    const dir = mkdtempSync(join(tmpdir(), 'carteiro-pool-'));
    const fifo = join(dir, 'fifo');
    execFileSync('mkfifo', [fifo]);
    const threads = Number(process.env.UV_THREADPOOL_SIZE) || 4;
    const held = Array.from({ length: threads }, () => open(fifo, 'r'));
    t.after(async () => {
      // A writer (opened on this thread: the pool is busy) releases every blocked open.
      const writer = openSync(fifo, fsConstants.O_WRONLY | fsConstants.O_NONBLOCK);
      for (const handle of await Promise.all(held)) await handle.close();
      closeSync(writer);
      rmSync(dir, { recursive: true, force: true });
    });
    await sleep(100);
    assert.equal(
      await within(
        access(dir).then(() => 'done'),
        300,
      ),
      'still waiting',
      'the threadpool is saturated',
    );

    const guard = createDestinationGuard({ allow: [] }); // production's resolver: system DNS, /etc/hosts
    // Stuck behind the threadpool it would wait until the test ends: the deadline only tells that apart.
    const lookedUp = await within(lookupVia(guard, 'localhost'), 10_000);
    assert.notEqual(lookedUp, 'still waiting', 'the lookup queued behind the busy threadpool');
    const [err] = lookedUp as unknown[];
    assert.match((err as Error).message, /destination resolves to a blocked address: localhost → 127\.0\.0\.1 \(loopback\)/);
    const checked = await within(
      guard.checkUrl('http://localhost:9/hook').then(
        () => 'passed',
        (e: Error) => e.message,
      ),
      10_000,
    );
    assert.match(checked, /localhost.*127\.0\.0\.1 \(loopback\)/);
  });
});
