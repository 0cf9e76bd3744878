import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { MqttClient } from 'mqtt';
import pino from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { buildGateway, type Gateway } from '../../gateway/gateway.ts';
import { openCredentialStore } from '../../gateway/credentials.ts';
import { buildCloud, type Cloud, type IngestStats } from '../../cloud/app.ts';
import { topics } from '../../lib/topics.ts';
import { connectMqtt } from '../gateway/helpers.ts';
import { district, profiles } from './fixtures.ts';
import { mulberry32 } from '../../devices/scenario.ts';

/**
 * MQTT fuzz (issue #10, "Done when"): an authenticated gateway publishes COUNT malformed or hostile
 * payloads through the real broker to the cloud's MQTT subscriber. Bounded and seeded (CS_FUZZ_SEED
 * replays a run); the cloud must answer each by a counted outcome, never fail or stop, keep serving
 * its API, and store the next valid reading.
 */

const COUNT = 5000;
const SEED = Number(process.env.CS_FUZZ_SEED ?? 0x5eed2026);
const GW = 'gw-xz-jida';
const DEV = 'XZ-WL-001';

/** The simulators' seeded PRNG, so a failing run can be replayed. */
const prng = mulberry32;

/** A hostile edge alarm (`cs/v1/{gw}/alarm/{device}`): a weird field, a conflicting repeat, or any hostile reading payload. */
function hostileAlarm(rand: () => number, i: number): { device: string; payload: Buffer } {
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)];
  const ts = new Date().toISOString();
  const good = { seq: 2_000_000 + i, stream: 'fuzz', ts, device: DEV, rule: 'level-tier1', hazard: 'waterlogging', severity: 'minor', point: 'level_m', value: 0.8, limit: 0.7, active: true, since: ts, historical: false };
  const json = (v: unknown) => ({ device: DEV, payload: Buffer.from(JSON.stringify(v)) });
  switch (Math.floor(rand() * 4)) {
    case 0:
      return json({ ...good, [pick(['seq', 'ts', 'device', 'rule', 'hazard', 'severity', 'value', 'active', 'since', 'stream'])]: pick([1e300, -1, 2 ** 63, null, '<script>', {}, [], '\u0000', 'x'.repeat(300)]) });
    case 1: // a conflicting repeat of one key
      return json({ ...good, seq: 43, value: rand(), historical: true });
    case 2: // unknown rules and hazards, or another gateway's device
      return json({ ...good, rule: pick(['nope', '__proto__', 'constructor']), hazard: pick(['waterlogging', 'toString', 'x']), device: pick([DEV, 'XZ-MH-001']) });
    default:
      return hostile(rand, i);
  }
}

function hostile(rand: () => number, i: number): { device: string; payload: Buffer } {
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)];
  const now = Date.now();
  const good = { seq: 1_000_000 + i, stream: 'fuzz', ts: new Date(now).toISOString(), device: DEV, values: { level_m: 0.02 }, quality: 'good', historical: false };
  const json = (v: unknown) => ({ device: DEV, payload: Buffer.from(JSON.stringify(v)) });
  const weird: unknown[] = [
    1e300, -1, 2 ** 63, 2 ** 53, 0.5, -0, '7', null, true, [], {}, 'NaN', '<script>alert(1)</script>', '\u0000', '\ud800',
    'x'.repeat(300), { $gt: 0 }, [1, [2, [3]]], { __proto__: { admin: true } },
  ];
  const kind = Math.floor(rand() * 16);
  switch (kind) {
    case 0: { // random bytes, up to 2 KB
      const n = Math.floor(rand() * 2048);
      return { device: DEV, payload: Buffer.from(Array.from({ length: n }, () => Math.floor(rand() * 256))) };
    }
    case 1: { // a valid reading cut short
      const s = JSON.stringify(good);
      return { device: DEV, payload: Buffer.from(s.slice(0, Math.floor(rand() * s.length))) };
    }
    case 2: // a field replaced by a weird value
      return json({ ...good, [pick(['seq', 'ts', 'device', 'values', 'quality', 'historical', 'stream'])]: pick(weird) });
    case 3: // a value replaced by a weird value, or an injected point
      return json({ ...good, values: rand() < 0.5 ? { level_m: pick(weird) } : { level_m: 0.1, [pick(['zz_injected', 'constructor', '__proto__', 'toString', 'a'.repeat(64)])]: pick(weird) } });
    case 4: // impossible or implausible instants
      return json({ ...good, ts: pick(['9999-12-31T23:59:59Z', '2026-02-30T00:00:00Z', '0000-01-01T00:00:00Z', '1970-01-01T00:00:00Z', '2026-01-01T24:00:00Z', '2026-01-01', '', 'now', new Date(now + 3_600_000).toISOString()]) });
    case 5: // prototype pollution through the raw text
      return { device: DEV, payload: Buffer.from(`{"__proto__":{"polluted":1},"constructor":{"prototype":{"polluted":1}},"seq":${i},"ts":"${good.ts}","device":"${DEV}","values":{"level_m":1}}`) };
    case 6: { // deep nesting
      const depth = 1 + Math.floor(rand() * 5000);
      return { device: DEV, payload: Buffer.from(`{"seq":1,"values":${'['.repeat(depth)}${']'.repeat(depth)}}`) };
    }
    case 7: // too many points
      return json({ ...good, values: Object.fromEntries(Array.from({ length: 65 + Math.floor(rand() * 500) }, (_, k) => [`p${k}`, k])) });
    case 8: // larger than the cloud takes (64 KiB), smaller than the broker's packet limit
      return json({ ...good, values: { level_m: 'x'.repeat(65 * 1024 + Math.floor(rand() * 60_000)) } });
    case 9: // a device that does not exist, or another gateway's device, on its own topic
      return rand() < 0.5 ? { device: 'XZ-NOPE-1', payload: Buffer.from(JSON.stringify({ ...good, device: 'XZ-NOPE-1' })) } : { device: 'XZ-MH-001', payload: Buffer.from(JSON.stringify({ ...good, device: 'XZ-MH-001' })) };
    case 10: // payload device differs from the topic's
      return json({ ...good, device: 'XZ-WL-002' });
    case 11: // a conflicting repeat of one key
      return json({ ...good, seq: 42, values: { level_m: rand() } });
    case 12: // extra top-level properties
      return json({ ...good, [pick(['admin', 'sql', 'role', '$where'])]: pick(weird) });
    case 13: // not an object at all
      return json(pick(weird));
    case 14: // invalid UTF-8 and a byte-order mark around a valid reading
      return { device: DEV, payload: Buffer.concat([Buffer.from(pick([[0xef, 0xbb, 0xbf], [0xc3, 0x28], [0xff, 0xfe], [0x00]])), Buffer.from(JSON.stringify(good))]) };
    default: // empty and whitespace
      return { device: DEV, payload: Buffer.from(pick(['', ' ', '\n', 'null', '""', '{}', '[]'])) };
  }
}

type Outcomes = Pick<IngestStats, 'stored' | 'duplicates' | 'conflicts' | 'failed' | 'rejected'>;
const count = (s: Outcomes) => s.stored + s.duplicates + s.conflicts + s.failed + Object.values(s.rejected).reduce((a, b) => a + b, 0);
const outcomes = (s: ReturnType<Cloud['stats']>) => count(s) + count(s.edgeAlarms);

let dir: string | undefined;
let gateway: Gateway | undefined;
let cloud: Cloud | undefined;
let client: MqttClient | undefined;

afterEach(async () => {
  await client?.endAsync();
  await cloud?.stop();
  await gateway?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
  client = cloud = gateway = dir = undefined;
});

describe('MQTT fuzz', () => {
  it(`${COUNT} malformed or hostile payloads from an authenticated gateway leave the cloud serving and the next valid reading stored (seed ${SEED})`, async () => {
    dir = mkdtempSync(join(tmpdir(), 'cs-fuzz-'));
    const errors: string[] = [];
    const creds = openCredentialStore(dir);
    const cloudPass = creds.create('cloud', 'service').password;
    const gwPass = creds.create(GW, 'gateway').password;
    gateway = buildGateway({ host: '127.0.0.1', port: 0, credentials: creds });
    const mq = await gateway.start();
    const url = `mqtt://${mq.host}:${mq.port}`;
    cloud = await buildCloud({
      db: { kind: 'sqlite', file: join(dir, 'cs.db') }, district, profiles, escalation: false, emergency: false,
      mqtt: { url, username: 'cloud', password: cloudPass },
      logger: pino({ level: 'error' }, { write: (line: string) => { errors.push(line); } }),
    });
    await cloud.start();
    client = await connectMqtt(url, { clientId: GW, username: GW, password: gwPass });

    const rand = prng(SEED);
    const started = Date.now();
    for (let i = 0; i < COUNT; i += 250) {
      // A quarter on edge alarm topics: the same intake, the same guards.
      const batch = Array.from({ length: Math.min(250, COUNT - i) }, (_, k) => (rand() < 0.25
        ? { topic: topics.alarm, ...hostileAlarm(rand, i + k) } : { topic: topics.up, ...hostile(rand, i + k) }));
      await Promise.all(batch.map((m) => client!.publishAsync(m.topic(GW, m.device), m.payload, { qos: 1 })));
    }
    const c = cloud;
    for (let i = 0; i < 600 && outcomes(c.stats()) < COUNT; i++) await new Promise((r) => setTimeout(r, 50));
    const stats = c.stats();
    console.log(`mqtt fuzz (seed ${SEED}): ${COUNT} payloads handled in ${Date.now() - started} ms: ${JSON.stringify(stats)}`);
    // Every payload answered by a counted outcome, none by a failure; the gateway still connected.
    expect(errors.slice(0, 3)).toEqual([]);
    expect(outcomes(stats)).toBe(COUNT);
    expect(stats.failed).toBe(0);
    expect(stats.edgeAlarms.failed).toBe(0);
    expect(count(stats.edgeAlarms)).toBeGreaterThan(COUNT / 5);
    expect(stats.edgeAlarms.conflicts).toBeGreaterThan(0);
    expect(stats.warningsSuppressed + stats.edgeAlarms.warningsSuppressed).toBeGreaterThan(0);
    expect(client.connected).toBe(true);

    // Still serving, and the next valid reading is stored and shown.
    expect((await c.app.inject({ url: '/healthz' })).statusCode).toBe(200);
    const token = await c.tokens.create('operator');
    const before = c.stats().stored;
    const valid = { seq: 9_000_000, stream: 'after-fuzz', ts: new Date().toISOString(), device: DEV, values: { level_m: 0.0314, battery_pct: 88 }, quality: 'good', historical: false };
    await client.publishAsync(topics.up(GW, DEV), JSON.stringify(valid), { qos: 1 });
    for (let i = 0; i < 200 && c.stats().stored === before; i++) await new Promise((r) => setTimeout(r, 25));
    expect(c.stats().stored).toBe(before + 1);
    const device = await c.app.inject({ url: `/api/devices/${DEV}`, headers: { authorization: `Bearer ${token}` } });
    expect(device.statusCode).toBe(200);
    expect(device.json().latest).toMatchObject({ seq: 9_000_000, values: { level_m: 0.0314, battery_pct: 88 } });
    // Nothing forged reached the stored values: no unknown point, no polluted prototype.
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    const readings = await c.app.inject({ url: `/api/devices/${DEV}/readings?limit=1000`, headers: { authorization: `Bearer ${token}` } });
    for (const r of readings.json().items as { values: Record<string, unknown> }[]) {
      for (const [k, v] of Object.entries(r.values)) {
        expect(['level_m', 'battery_pct']).toContain(k);
        expect(typeof v).toBe('number');
      }
    }
  }, 120_000);
});
