import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { MqttClient } from 'mqtt';
import pino from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { loadDistrict } from '../../devices/district.ts';
import { loadProfiles } from '../../devices/profile.ts';
import { buildCloud, type Cloud } from '../../cloud/app.ts';
import { openDatabase } from '../../cloud/db/database.ts';
import { CredentialStore } from '../../gateway/credentials.ts';
import { buildGatewayService, type GatewayService } from '../../gateway/service.ts';
import { eventually } from '../helpers/process.ts';
import { connectMqtt, deleteKeys, REDIS_URL, redisAvailable, uniquePrefix } from './helpers.ts';

/** Edge alarms take the readings' way at scale: appended to the Redis Stream before the PUBACK, consumed by a cloud worker. */

const redisOk = await redisAvailable();
if (!redisOk) console.warn(`[skip] stream alarm test: no Redis at ${REDIS_URL}`);
const profiles = loadProfiles();
const district = loadDistrict(fileURLToPath(new URL('../../devices/district/xiangzhou.yaml', import.meta.url)), profiles);
const GW = 'gw-xz-gongbei';
const PASS = 'gateway-password-01';

let dir: string | undefined;
let prefix: string | undefined;
let svc: GatewayService | undefined;
let cloud: Cloud | undefined;
let client: MqttClient | undefined;
afterEach(async () => {
  await client?.endAsync(true).catch(() => undefined);
  await cloud?.stop();
  await svc?.stop();
  if (prefix) await deleteKeys(prefix);
  if (dir) rmSync(dir, { recursive: true, force: true });
  client = cloud = svc = prefix = dir = undefined;
});

describe.skipIf(!redisOk)('edge alarms through the Redis Stream', () => {
  it('an edge alarm through the Redis Stream raises its alarm and case, origin edge, in stream order with the readings', async () => {
    dir = mkdtempSync(join(tmpdir(), 'cs-stream-alarm-'));
    prefix = uniquePrefix('stream-alarm');
    const store = CredentialStore.memory();
    store.create(GW, 'gateway', PASS);
    svc = buildGatewayService({
      settings: {
        mqtt: { host: '127.0.0.1', port: 0, maxPacketSizeBytes: 65536 }, limits: { drainTimeoutMs: 30_000 },
        redis: { url: REDIS_URL, keyPrefix: prefix }, stream: { key: 'readings', maxLen: 0 }, allowAnonymous: false,
      },
      credentials: store, logger: pino({ level: 'silent' }),
    });
    await svc.start();
    const dbFile = join(dir, 'cs.db');
    cloud = await buildCloud({
      db: { kind: 'sqlite', file: dbFile }, district, profiles, escalation: false, emergency: false,
      source: { kind: 'redis-stream', url: REDIS_URL, stream: `${prefix}readings`, group: 'cloud', consumer: 'worker-1', blockMs: 100 },
    });
    await cloud.start();
    client = await connectMqtt(`mqtt://127.0.0.1:${svc.gateway.port}`, { username: GW, password: PASS });

    const ts = '2026-09-14T06:00:00.000Z';
    // The edge's order: the alarm (seq 5), then the reading that raised it (seq 6).
    await client.publishAsync(`cs/v1/${GW}/alarm/XZ-MH-001`, JSON.stringify({
      seq: 5, ts, device: 'XZ-MH-001', rule: 'cover-open', hazard: 'cover-open', severity: 'critical', point: 'cover_open',
      value: true, limit: true, active: true, since: ts, historical: false,
    }), { qos: 1 });
    await client.publishAsync(`cs/v1/${GW}/up/XZ-MH-001`, JSON.stringify({ seq: 6, ts, device: 'XZ-MH-001', values: { cover_open: true }, quality: 'good', historical: false }), { qos: 1 });
    const c = cloud;
    await eventually(() => c.stats().stored >= 1 && c.stats().edgeAlarms.stored >= 1, 10_000, 25);
    expect(c.stats().edgeAlarms).toMatchObject({ raised: 1, rejected: {} });
    const db = openDatabase({ kind: 'sqlite', file: dbFile });
    try {
      expect(await db.db.selectFrom('alarms').select(['origin', 'hazard']).execute()).toEqual([{ origin: 'edge', hazard: 'cover-open' }]);
      // The reading merged into the edge alarm's case: one case, two breaches.
      expect(await db.db.selectFrom('cases').select(['hazard', 'breach_count']).execute()).toEqual([{ hazard: 'cover-open', breach_count: 2 }]);
    } finally {
      await db.close();
    }
  });
});
