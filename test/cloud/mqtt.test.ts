import { createServer, type AddressInfo, type Server } from 'node:net';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Aedes } from 'aedes';
import mqtt, { type MqttClient } from 'mqtt';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { loadProfiles } from '../../devices/profile.ts';
import { loadDistrict } from '../../devices/district.ts';
import { topics } from '../../lib/topics.ts';
import { buildCloud, type Cloud } from '../../cloud/app.ts';
import { Sqlite } from '../../lib/sqlite.ts';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const profiles = loadProfiles();
const district = loadDistrict(join(ROOT, 'devices/district/xiangzhou.yaml'), profiles);

async function until(cond: () => boolean | Promise<boolean>, what: string): Promise<void> {
  for (let i = 0; i < 500; i++) {
    if (await cond()) return;
    await new Promise((r) => setTimeout(r, 10));
  }
  throw new Error(`timed out waiting for ${what}`);
}

describe('MQTT ingest', () => {
  let dir: string;
  let broker: Aedes;
  let server: Server;
  let url: string;
  let cloud: Cloud | undefined;
  let publisher: MqttClient | undefined;

  beforeEach(async () => {
    dir = mkdtempSync(join(tmpdir(), 'cs-mqtt-'));
    broker = await Aedes.createBroker();
    server = createServer(broker.handle);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    url = `mqtt://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });

  afterEach(async () => {
    await publisher?.endAsync();
    await cloud?.stop();
    await new Promise<void>((resolve) => broker.close(() => resolve()));
    await new Promise<void>((resolve) => server.close(() => resolve()));
    rmSync(dir, { recursive: true, force: true });
  });

  it('stores a reading published over MQTT and opens its case', async () => {
    cloud = await buildCloud({
      db: { kind: 'sqlite', file: join(dir, 'cs.db') }, district, profiles,
      mqtt: { url, username: 'cloud', password: 'unused-by-this-broker' },
    });
    await cloud.start();
    const token = await cloud.tokens.create('operator');
    expect((await cloud.app.inject({ url: '/healthz' })).json().mqtt).toBe('connected');

    publisher = await mqtt.connectAsync(url, { protocolVersion: 4, clientId: 'gw-xz-jida' });
    const reading = { seq: 7, ts: new Date().toISOString(), device: 'XZ-WL-001', values: { level_m: 0.93, battery_pct: 90 }, quality: 'good', historical: false };
    await publisher.publishAsync(topics.up('gw-xz-jida', 'XZ-WL-001'), JSON.stringify(reading), { qos: 1 });
    await publisher.publishAsync(topics.up('gw-xz-jida', 'XZ-WL-001'), 'not json', { qos: 1 });

    await until(() => cloud!.stats().stored === 1 && cloud!.stats().rejected['bad-json'] === 1, 'the reading and the rejection');
    const readings = await cloud.app.inject({ url: '/api/devices/XZ-WL-001/readings', headers: { authorization: `Bearer ${token}` } });
    expect(readings.json().items).toMatchObject([{ gateway: 'gw-xz-jida', seq: 7, values: { level_m: 0.93 } }]);
    const cases = await cloud.app.inject({ url: '/api/cases', headers: { authorization: `Bearer ${token}` } });
    expect(cases.json().items).toMatchObject([{ device: 'XZ-WL-001', hazard: 'waterlogging', unit: 'xz-drainage', state: 'dispatched' }]);

    // The gateway's retained death certificate marks its devices offline.
    await publisher.publishAsync(topics.state('gw-xz-jida'), JSON.stringify({ online: false, bdSeq: 1, ts: new Date().toISOString() }), { qos: 1, retain: true });
    await until(async () => {
      const d = await cloud!.app.inject({ url: '/api/devices/XZ-WL-001', headers: { authorization: `Bearer ${token}` } });
      return d.json().status === 'offline';
    }, 'the device to show offline');
  });

  it('acknowledges each reading only once it is stored, with many in hand at a time', async () => {
    const file = join(dir, 'cs.db');
    cloud = await buildCloud({ db: { kind: 'sqlite', file }, district, profiles, escalation: false, mqtt: { url, username: 'cloud', password: 'unused-by-this-broker' } });
    await cloud.start();
    const other = new Sqlite(file, { readonly: true });
    const storedCount = other.prepare('select count(*) as n from readings');
    // Counted synchronously in the broker as each of the cloud's PUBACKs arrives (Aedes's 'ack' names no
    // packet): the subscription delivers in order, so by the k-th PUBACK at least k readings are stored.
    const storedAtAck: number[] = [];
    broker.on('ack', (_packet, client) => {
      if (client?.id !== 'gw-xz-jida') storedAtAck.push(Number((storedCount.get() as { n: number }).n));
    });
    publisher = await mqtt.connectAsync(url, { protocolVersion: 4, clientId: 'gw-xz-jida' });
    const t0 = Date.now();
    await Promise.all(Array.from({ length: 300 }, (_, i) => publisher!.publishAsync(topics.up('gw-xz-jida', 'XZ-WL-001'),
      JSON.stringify({ seq: i + 1, ts: new Date(t0 - 300_000 + i * 1000).toISOString(), device: 'XZ-WL-001', values: { level_m: 0.3 }, quality: 'good', historical: false }), { qos: 1 })));
    await until(() => storedAtAck.length === 300, 'the cloud to acknowledge all 300');
    other.close();
    expect(storedAtAck.filter((n, k) => n < k + 1)).toEqual([]);
    expect(cloud.stats().stored).toBe(300);
  });

  it('leaves unacknowledged only the reading the database refused, acknowledging the rest of its batch', async () => {
    const file = join(dir, 'cs.db');
    cloud = await buildCloud({ db: { kind: 'sqlite', file }, district, profiles, escalation: false, mqtt: { url, username: 'cloud', password: 'unused-by-this-broker' } });
    await cloud.start();
    const admin = new Sqlite(file);
    admin.exec("create trigger refuse_17 before insert on readings when new.seq = 17 begin select raise(abort, 'seq 17 refused by the test trigger'); end");
    admin.close();
    let acks = 0;
    broker.on('ack', (_packet, client) => { if (client?.id !== 'gw-xz-jida') acks++; });
    publisher = await mqtt.connectAsync(url, { protocolVersion: 4, clientId: 'gw-xz-jida' });
    const t0 = Date.now();
    await Promise.all(Array.from({ length: 40 }, (_, i) => publisher!.publishAsync(topics.up('gw-xz-jida', 'XZ-WL-001'),
      JSON.stringify({ seq: i + 1, ts: new Date(t0 - 60_000 + i * 1000).toISOString(), device: 'XZ-WL-001', values: { level_m: 0.3 }, quality: 'good', historical: false }), { qos: 1 })));
    await until(() => cloud!.stats().stored === 39 && cloud!.stats().failed === 1, 'the batch to be stored but one');
    await until(() => acks === 39, '39 acknowledgements');
    await new Promise((r) => setTimeout(r, 300));
    expect(acks).toBe(39);
  });

  it('refuses to start when the broker cannot be reached', async () => {
    const port = (server.address() as AddressInfo).port;
    await new Promise<void>((resolve) => server.close(() => resolve()));
    server = createServer();
    cloud = await buildCloud({
      db: { kind: 'sqlite', file: join(dir, 'cs.db') }, district, profiles,
      mqtt: { url: `mqtt://127.0.0.1:${port}`, username: 'cloud', password: 'x' },
    });
    await expect(cloud.start()).rejects.toMatchObject({ code: 'CS_CLOUD_MQTT_CONNECT' });
  });
});
