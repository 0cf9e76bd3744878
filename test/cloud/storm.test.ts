import { createServer, type AddressInfo, type Server } from 'node:net';
import { Aedes } from 'aedes';
import mqtt, { type MqttClient } from 'mqtt';
import { sql } from 'kysely';
import { afterAll, describe, expect, it } from 'vitest';
import { topics } from '../../lib/topics.ts';
import { buildCloud, type Cloud } from '../../cloud/app.ts';
import { openDatabase } from '../../cloud/db/database.ts';
import pino from 'pino';
import { CredentialStore } from '../../gateway/credentials.ts';
import { buildGatewayService, type GatewayService } from '../../gateway/service.ts';
import { deleteKeys, REDIS_URL, redisAvailable, uniquePrefix } from '../gateway/helpers.ts';
import { freshDatabase, pgAvailable, profiles, reading, syntheticDistrict } from './fixtures.ts';

/**
 * A breach storm (docs/domain.md#the-case: "a breach storm must never create duplicates, even with
 * several cloud workers"): 1,000 breaches a second across 500 assets for 10 seconds, published
 * QoS 1 by 10 gateways through a real broker into two cloud workers sharing one PostgreSQL
 * database. With Redis, through the Redis Stream hand-off: the broker appends each reading to
 * the stream before its PUBACK and both workers consume it through one consumer group
 * (cloud/stream.ts); without Redis, each worker subscribes to half the gateways over MQTT.
 * Fixed size: 10,000 readings.
 */

const ASSETS = 500;
const GATEWAYS = 10;
const RATE = 1000;
const SECONDS = 10;
const TOTAL = RATE * SECONDS;
const district = syntheticDistrict(ASSETS, GATEWAYS);
const devicesOf = (g: number) => district.devices.filter((d) => d.id.startsWith('WL-T-') && (Number(d.id.slice(5)) - 1) % GATEWAYS === g).map((d) => d.id);

const viaStream = await redisAvailable();
const PASS = 'storm-gateway-password';
if (!pgAvailable) console.warn('breach storm: skipped, PostgreSQL is not reachable');
else if (!viaStream) console.warn(`breach storm: no Redis at ${REDIS_URL}: each worker takes half the gateways over MQTT instead of the stream hand-off`);

describe.skipIf(!pgAvailable)('breach storm on PostgreSQL with two cloud workers', () => {
  const clouds: Cloud[] = [];
  const publishers: MqttClient[] = [];
  let broker: Aedes | undefined;
  let server: Server | undefined;
  let service: GatewayService | undefined;
  let drop: (() => Promise<void>) | undefined;
  const prefix = uniquePrefix('storm');

  afterAll(async () => {
    for (const p of publishers) await p.endAsync().catch(() => undefined);
    for (const c of clouds) await c.stop();
    if (broker) await new Promise<void>((resolve) => broker!.close(() => resolve()));
    if (server) await new Promise<void>((resolve) => server!.close(() => resolve()));
    await service?.stop();
    if (viaStream) await deleteKeys(prefix);
    await drop?.();
  });

  it(`opens exactly one case per asset and hazard and loses nothing: ${TOTAL} breaches over ${ASSETS} assets at ${RATE}/s`, async () => {
    const fresh = await freshDatabase('postgres');
    drop = fresh.drop;
    const gwIds = Array.from({ length: GATEWAYS }, (_, g) => `gw-t-${g}`);
    let url: string;
    if (viaStream) {
      // The gateway service: authenticated broker, each reading appended to the stream before its PUBACK.
      const store = CredentialStore.memory();
      for (const gw of gwIds) store.create(gw, 'gateway', PASS);
      service = buildGatewayService({
        settings: {
          mqtt: { host: '127.0.0.1', port: 0, maxPacketSizeBytes: 65536 }, limits: { drainTimeoutMs: 30_000 },
          redis: { url: REDIS_URL, keyPrefix: prefix }, stream: { key: 'readings', maxLen: 0 }, allowAnonymous: false,
        },
        credentials: store, logger: pino({ level: 'silent' }),
      });
      await service.start();
      url = `mqtt://127.0.0.1:${service.gateway.port}`;
      for (const consumer of ['worker-a', 'worker-b']) {
        const c = await buildCloud({
          db: fresh.db, district, profiles, escalation: false,
          source: { kind: 'redis-stream', url: REDIS_URL, stream: `${prefix}readings`, group: 'cloud', consumer, blockMs: 100 },
        });
        clouds.push(c);
        await c.start();
      }
    } else {
      broker = await Aedes.createBroker();
      server = createServer(broker.handle);
      await new Promise<void>((resolve) => server!.listen(0, '127.0.0.1', resolve));
      url = `mqtt://127.0.0.1:${(server.address() as AddressInfo).port}`;
      for (const share of [gwIds.slice(0, GATEWAYS / 2), gwIds.slice(GATEWAYS / 2)]) {
        const c = await buildCloud({
          db: fresh.db, district, profiles, escalation: false,
          mqtt: { url, username: 'cloud', password: 'x', gateways: share, clientId: `cloud-${share[0]}` },
        });
        clouds.push(c);
        await c.start();
      }
    }
    for (const gw of gwIds) publishers.push(await mqtt.connectAsync(url, { protocolVersion: 4, clientId: gw, username: gw, password: PASS }));

    // Each gateway: RATE / GATEWAYS readings a second, in batches every 100 ms, round robin over its assets.
    const perBatch = RATE / GATEWAYS / 10;
    const started = Date.now();
    const sends: Promise<unknown>[] = [];
    for (let batch = 0; batch < SECONDS * 10; batch++) {
      const due = started + batch * 100;
      if (due > Date.now()) await new Promise((r) => setTimeout(r, due - Date.now()));
      publishers.forEach((p, g) => {
        const devices = devicesOf(g);
        for (let k = 0; k < perBatch; k++) {
          const seq = batch * perBatch + k + 1;
          const device = devices[(seq - 1) % devices.length];
          const level = seq % 2 ? 0.9 : 0.97;
          sends.push(p.publishAsync(topics.up(gwIds[g], device), reading(device, seq, Date.now(), { level_m: level }), { qos: 1 }));
        }
      });
    }
    await Promise.all(sends);
    const published = Date.now() - started;

    const stored = () => clouds.reduce((s, c) => s + c.stats().stored + c.stats().duplicates, 0);
    for (let i = 0; i < 1200 && stored() < TOTAL; i++) await new Promise((r) => setTimeout(r, 100));
    const drained = Date.now() - started;
    console.log(`storm (${viaStream ? 'Redis Stream hand-off' : 'half the gateways each'}): published ${TOTAL} in ${published} ms, all stored after ${drained} ms; workers stored ${clouds.map((c) => c.stats().stored).join(' + ')}`);
    expect(stored()).toBe(TOTAL);

    const db = openDatabase(fresh.db);
    try {
      const readings = await db.db.selectFrom('readings').select(sql<number>`count(*)`.as('n')).executeTakeFirstOrThrow();
      expect(Number(readings.n)).toBe(TOTAL);
      const perAsset = await db.db.selectFrom('cases').select(['device', 'hazard', sql<number>`count(*)`.as('n'), sql<number>`sum(breach_count)`.as('breaches')])
        .where('state', 'not in', ['closed', 'void']).groupBy(['device', 'hazard']).execute();
      expect(perAsset).toHaveLength(ASSETS);
      expect(perAsset.every((r) => Number(r.n) === 1 && r.hazard === 'waterlogging')).toBe(true);
      expect(perAsset.reduce((s, r) => s + Number(r.breaches), 0)).toBe(TOTAL);
      const alarms = await db.db.selectFrom('alarms').select(sql<number>`count(*)`.as('n')).where('cleared_at', 'is', null).executeTakeFirstOrThrow();
      expect(Number(alarms.n)).toBe(ASSETS);
      const opened = clouds.reduce((s, c) => s + c.stats().casesOpened, 0);
      expect(opened).toBe(ASSETS);
      expect(clouds.reduce((s, c) => s + c.stats().failed, 0)).toBe(0);
    } finally {
      await db.close();
    }
  }, 180_000);
});
