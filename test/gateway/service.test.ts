import { execFileSync } from 'node:child_process';
import { connect as netConnect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import type { MqttClient } from 'mqtt';
import pino from 'pino';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { CredentialStore } from '../../gateway/credentials.ts';
import { buildGatewayService, type GatewayService, type GatewayServiceSettings } from '../../gateway/service.ts';
import { tokenBucket } from '../../gateway/limits.ts';
import { closed, collector, connectMqtt, REDIS_URL, redisAvailable, uniquePrefix } from './helpers.ts';

/** The gateway as a service: HTTP metrics and admin API, limits, the anonymous development switch. */

const ADMIN = 'admin-token-0123456789';
let store: CredentialStore;
const services: GatewayService[] = [];
const clients: MqttClient[] = [];
const sockets: Socket[] = [];

function settings(over: Partial<GatewayServiceSettings> = {}): GatewayServiceSettings {
  return {
    mqtt: { host: '127.0.0.1', port: 0, maxPacketSizeBytes: 64 * 1024 },
    limits: { drainTimeoutMs: 30_000 },
    http: { host: '127.0.0.1', port: 0 },
    allowAnonymous: false,
    ...over,
  };
}

async function start(over: Partial<GatewayServiceSettings> = {}, extra: { adminToken?: string; lines?: string[] } = { adminToken: ADMIN }) {
  const lines = extra.lines;
  const logger = lines ? pino({ level: 'info' }, new Writable({ write(c, _e, cb) { lines.push(String(c)); cb(); } })) : pino({ level: 'silent' });
  const svc = buildGatewayService({ settings: settings(over), credentials: store, logger, adminToken: extra.adminToken });
  services.push(svc);
  const at = await svc.start();
  return { svc, at, port: svc.gateway.port };
}

async function mqttClient(port: number, username?: string, password?: string): Promise<MqttClient> {
  const c = await connectMqtt(`mqtt://127.0.0.1:${port}`, { ...(username ? { username } : {}), ...(password ? { password } : {}) });
  clients.push(c);
  return c;
}

async function refusedCode(port: number, username?: string, password?: string): Promise<number> {
  try {
    await mqttClient(port, username, password);
  } catch (err) {
    return (err as { code: number }).code;
  }
  throw new Error('accepted');
}

beforeEach(() => {
  store = CredentialStore.memory();
  store.create('gw1', 'gateway', 'gw1-password-0001');
  store.create('cloud', 'service', 'cloud-password-001');
});

afterEach(async () => {
  for (const c of clients.splice(0)) await c.endAsync(true).catch(() => undefined);
  for (const s of sockets.splice(0)) s.destroy();
  for (const s of services.splice(0)) await s.stop();
});

describe('gateway metrics endpoint', () => {
  it('counts connections, messages, bytes, authentication failures, denials and drops on /metrics', async () => {
    const { at, port } = await start();
    await refusedCode(port, 'gw1', 'wrong-password-123');
    await refusedCode(port);
    const gw1 = await mqttClient(port, 'gw1', 'gw1-password-0001');
    await gw1.publishAsync('cs/v1/gw1/up/d1', 'x'.repeat(100), { qos: 1 });
    await gw1.subscribeAsync('#').catch(() => undefined);
    const big = await mqttClient(port, 'gw1', 'gw1-password-0001');
    const lost = closed(big);
    big.publish('cs/v1/gw1/up/d1', Buffer.alloc(70 * 1024));
    await lost;
    const res = await fetch(`${at.http}/metrics`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toContain('text/plain');
    const text = await res.text();
    expect(text).toMatch(/^cs_gateway_connections 1$/m);
    expect(text).toMatch(/^cs_gateway_auth_failures_total\{code="CS_GW_AUTH_FAILED"\} 1$/m);
    expect(text).toMatch(/^cs_gateway_auth_failures_total\{code="CS_GW_AUTH_MISSING"\} 1$/m);
    expect(text).toMatch(/^cs_gateway_messages_total\{qos="1"\} 1$/m);
    expect(text).toMatch(/^cs_gateway_received_bytes_total 100$/m);
    expect(text).toMatch(/^cs_gateway_denied_total\{kind="subscribe"\} 1$/m);
    expect(text).toMatch(/^cs_gateway_dropped_connections_total\{reason="packet-too-large"\} 1$/m);
    expect(text).toContain('cs_gateway_process_resident_memory_bytes');
  });

  it('logs every authentication failure as structured JSON without the secret', async () => {
    const lines: string[] = [];
    const { port } = await start({}, { lines });
    await refusedCode(port, 'gw1', 'very-secret-guess-42');
    const refusal = lines.map((l) => JSON.parse(l)).find((l) => l.msg === 'mqtt connection refused');
    expect(refusal).toMatchObject({ username: 'gw1', code: 'CS_GW_AUTH_FAILED', returnCode: 5 });
    expect(lines.join('')).not.toContain('very-secret-guess-42');
  });
});

describe('gateway credentials admin API', () => {
  const auth = { authorization: `Bearer ${ADMIN}` };

  it('refuses the admin routes without the admin token, and has none when no token is configured', async () => {
    const { at } = await start();
    const none = await fetch(`${at.http}/admin/credentials`);
    expect(none.status).toBe(401);
    expect(await none.json()).toMatchObject({ code: 'CS_GW_ADMIN_UNAUTHORIZED' });
    expect((await fetch(`${at.http}/admin/credentials`, { headers: { authorization: 'Bearer wrong-token-000000000' } })).status).toBe(401);
    const off = await start({}, {});
    expect((await fetch(`${off.at.http}/admin/credentials`, { headers: auth })).status).toBe(404);
    expect((await fetch(`${off.at.http}/healthz`)).status).toBe(200);
  });

  it('creates, lists, rotates and revokes credentials; a revoked one is disconnected at once', async () => {
    const { at, port } = await start();
    const created = await fetch(`${at.http}/admin/credentials`, { method: 'POST', headers: { ...auth, 'content-type': 'application/json' }, body: JSON.stringify({ username: 'gw7', role: 'gateway' }) });
    expect(created.status).toBe(201);
    const { password } = await created.json() as { password: string };
    const gw7 = await mqttClient(port, 'gw7', password);

    const list = await (await fetch(`${at.http}/admin/credentials`, { headers: auth })).json() as { username: string }[];
    expect(list.map((u) => u.username)).toEqual(['cloud', 'gw1', 'gw7']);
    expect(JSON.stringify(list)).not.toMatch(/scrypt|hash|salt/);

    const dup = await fetch(`${at.http}/admin/credentials`, { method: 'POST', headers: { ...auth, 'content-type': 'application/json' }, body: JSON.stringify({ username: 'gw7', role: 'gateway' }) });
    expect(dup.status).toBe(409);
    const bad = await fetch(`${at.http}/admin/credentials`, { method: 'POST', headers: { ...auth, 'content-type': 'application/json' }, body: JSON.stringify({ username: 'a/b', role: 'gateway' }) });
    expect(bad.status).toBe(400);

    const rotated = await (await fetch(`${at.http}/admin/credentials/gw7/rotate`, { method: 'POST', headers: auth })).json() as { password: string };
    expect(rotated.password).not.toBe(password);
    expect(await refusedCode(port, 'gw7', password)).toBe(5);
    await (await mqttClient(port, 'gw7', rotated.password)).endAsync();

    const lost = closed(gw7);
    const revoked = await fetch(`${at.http}/admin/credentials/gw7`, { method: 'DELETE', headers: auth });
    expect(revoked.status).toBe(200);
    expect(await revoked.json()).toMatchObject({ username: 'gw7', revokedAt: expect.any(String) });
    await lost;
    expect(await refusedCode(port, 'gw7', rotated.password)).toBe(5);
    expect((await fetch(`${at.http}/admin/credentials/nobody`, { method: 'DELETE', headers: auth })).status).toBe(404);
  });
});

describe('gateway limits', () => {
  it('closes sockets beyond maxConnections and keeps serving the ones admitted', async () => {
    const { svc, port } = await start({ limits: { drainTimeoutMs: 30_000, maxConnections: 2 } });
    const a = await mqttClient(port, 'gw1', 'gw1-password-0001');
    await mqttClient(port, 'cloud', 'cloud-password-001');
    const extra = netConnect(port, '127.0.0.1');
    sockets.push(extra);
    await new Promise((r) => extra.once('close', r));
    await a.publishAsync('cs/v1/gw1/health', '{}', { qos: 1 });
    expect(svc.gateway.stats().dropped).toBe(1);
  });

  it('refuses connections over the connection rate', async () => {
    const { svc, port } = await start({ limits: { drainTimeoutMs: 30_000, connectionsPerSecond: 0.001, connectionBurst: 2 } });
    await mqttClient(port, 'gw1', 'gw1-password-0001');
    await mqttClient(port, 'cloud', 'cloud-password-001');
    await expect(mqttClient(port, 'gw1', 'gw1-password-0001')).rejects.toThrow();
    const text = await svc.metrics.registry.getSingleMetricAsString('cs_gateway_dropped_connections_total');
    expect(text).toContain('reason="connection-rate"} 1');
  });

  it('holds back a client publishing over its rate without dropping anything', async () => {
    const { svc, port } = await start({ limits: { drainTimeoutMs: 30_000, publishesPerSecond: 200, publishBurst: 5 } });
    const cloud = await mqttClient(port, 'cloud', 'cloud-password-001');
    const got = collector(cloud);
    await cloud.subscribeAsync('cs/v1/+/up/+', { qos: 1 });
    const gw1 = await mqttClient(port, 'gw1', 'gw1-password-0001');
    await Promise.all(Array.from({ length: 40 }, (_, i) => gw1.publishAsync('cs/v1/gw1/up/d1', String(i), { qos: 1 })));
    await got.waitFor(40);
    expect(got.messages.map((m) => Number(m.payload))).toEqual(Array.from({ length: 40 }, (_, i) => i));
    const delayed = await svc.metrics.publishDelayed.get();
    expect(delayed.values[0].value).toBeGreaterThan(0);
    expect(gw1.connected).toBe(true);
  });

  it('token buckets refill with the injected clock', () => {
    let t = 0;
    const b = tokenBucket({ ratePerSecond: 10, burst: 2, now: () => t });
    expect([b.tryTake(), b.tryTake(), b.tryTake()]).toEqual([true, true, false]);
    t = 100;
    expect(b.tryTake()).toBe(true);
    expect(b.take()).toBe(100);
    expect(b.take()).toBe(200);
    t = 1000;
    expect(b.take()).toBe(0);
  });
});

describe('anonymous development switch', () => {
  it('is off by default: a client without credentials is refused', async () => {
    const { port } = await start();
    expect(await refusedCode(port)).toBe(4);
  });

  it('when on, warns loudly at start and lets a client without credentials into cs/v1 but not $SYS', async () => {
    const lines: string[] = [];
    const { port } = await start({ allowAnonymous: true }, { lines });
    expect(lines.map((l) => JSON.parse(l)).find((l) => l.level === 40 && /ANONYMOUS ACCESS IS ON/.test(l.msg))).toBeDefined();
    const anon = await mqttClient(port);
    const got = collector(anon);
    expect((await anon.subscribeAsync('cs/v1/#', { qos: 1 }))[0].qos).toBe(1);
    await anon.publishAsync('cs/v1/gw1/up/d1', 'dev', { qos: 1 });
    await got.waitFor(1);
    expect(await refusedCode(port, 'gw1', 'wrong-password-123')).toBe(5); // credentials given are still checked
    const lost = closed(anon);
    anon.publish('$SYS/x', 'y', { qos: 1 });
    await lost;
  });
});

const redisOk = await redisAvailable();

/** Sockets of this process connected to the test Redis (by the process's handles, as `ss` sees them). */
function redisSocketsOfThisProcess(): number {
  const port = new URL(REDIS_URL).port || '6379';
  const out = execFileSync('ss', ['-Htnp', `( dport = :${port} )`], { encoding: 'utf8' });
  return out.split('\n').filter((l) => l.includes(`pid=${process.pid},`)).length;
}

describe.skipIf(!redisOk)('gateway service start-up order', () => {
  it('a start with a missing TLS file and a Redis URL fails naming the file and leaves no Redis connection open', async () => {
    const before = redisSocketsOfThisProcess();
    const missing = join(tmpdir(), `cs-missing-${process.pid}`, 'server.crt');
    let err: unknown;
    try {
      const svc = buildGatewayService({
        settings: settings({
          tls: { port: 0, cert: missing, key: missing, clientCerts: 'none' },
          redis: { url: REDIS_URL, keyPrefix: uniquePrefix('tlsorder') },
        }),
        credentials: store, logger: pino({ level: 'silent' }),
      });
      services.push(svc);
      await svc.start();
    } catch (e) {
      err = e;
    }
    // Time for any connection opened on the way to be established.
    await new Promise((r) => setTimeout(r, 500));
    expect(redisSocketsOfThisProcess()).toBe(before);
    expect(err).toMatchObject({ code: 'CS_GW_TLS_CONFIG' });
    expect(String((err as Error).message)).toContain(missing);
  });
});

describe('gateway admin API sheds what it cannot serve', () => {
  /** Resolves with the ms until the server closes the socket (or `capMs` when it never does). */
  function heldFor(socket: Socket, capMs: number): Promise<number> {
    const t0 = Date.now();
    return new Promise((resolve) => {
      const t = setTimeout(() => resolve(capMs), capMs);
      socket.once('close', () => { clearTimeout(t); resolve(Date.now() - t0); });
    });
  }

  function rawSocket(port: number): Promise<Socket> {
    return new Promise((resolve, reject) => {
      const s = netConnect(port, '127.0.0.1', () => resolve(s));
      s.on('error', reject);
      s.on('data', () => undefined);
      sockets.push(s);
    });
  }

  it('closes a connection that sends half a request header within the header timeout (not Node\'s 60 s), and an idle one', async () => {
    const { at } = await start({ http: { host: '127.0.0.1', port: 0, limits: { headersTimeoutMs: 1000, requestTimeoutMs: 2000, idleTimeoutMs: 2000 } } });
    const port = Number(new URL(at.http!).port);
    const half = await rawSocket(port);
    half.write('GET /healthz HTTP/1.1\r\nHost: x\r\n');
    const idle = await rawSocket(port);
    const [halfMs, idleMs] = await Promise.all([heldFor(half, 10_000), heldFor(idle, 10_000)]);
    expect(halfMs).toBeLessThan(4_000);
    expect(idleMs).toBeLessThan(6_000);
  });

  it('caps connections per address: the excess is closed at once and an admitted one still answers', async () => {
    const { at } = await start({ http: { host: '127.0.0.1', port: 0, limits: { maxConnectionsPerAddress: 4 } } });
    const port = Number(new URL(at.http!).port);
    const held = await Promise.all(Array.from({ length: 4 }, () => rawSocket(port)));
    const extra = await Promise.all(Array.from({ length: 3 }, () => rawSocket(port)));
    for (const ms of await Promise.all(extra.map((s) => heldFor(s, 3_000)))) expect(ms).toBeLessThan(3_000);
    held[0].write('GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n');
    const reply = await new Promise<string>((resolve) => held[0].once('data', (b) => resolve(String(b))));
    expect(reply).toMatch(/^HTTP\/1\.1 200/);
  });
});
