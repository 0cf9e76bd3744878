import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { MqttClient } from 'mqtt';
import { afterEach, describe, expect, it } from 'vitest';
import { loadDistrict } from '../../devices/district.ts';
import { loadProfiles } from '../../devices/profile.ts';
import { buildCloud, type Cloud } from '../../cloud/app.ts';
import { openDatabase } from '../../cloud/db/database.ts';
import { CredentialStore } from '../../gateway/credentials.ts';
import { buildGateway, type Gateway } from '../../gateway/gateway.ts';
import { storeBeforePuback } from '../../gateway/handoff.ts';
import { closed, connectMqtt } from './helpers.ts';

/** The single-process default (the demo's wiring): the PUBACK of a reading means the cloud stored it. */

const profiles = loadProfiles();
const district = loadDistrict(fileURLToPath(new URL('../../devices/district/xiangzhou.yaml', import.meta.url)), profiles);
let dir: string | undefined;
let cloud: Cloud | undefined;
let gateway: Gateway | undefined;
let edge: MqttClient | undefined;

afterEach(async () => {
  await edge?.endAsync(true).catch(() => undefined);
  await gateway?.stop();
  await cloud?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
  edge = gateway = cloud = dir = undefined;
});

const reading = (seq: number) => JSON.stringify({ seq, ts: '2026-09-14T06:00:00.000Z', device: 'XZ-MH-001', values: { tilt_deg: 0.4 }, quality: 'good', historical: false });

describe('broker and cloud in one process', () => {
  it('acknowledges a reading only after the cloud stored it, acknowledges a bad one, and refuses one the cloud could not store', async () => {
    dir = mkdtempSync(join(tmpdir(), 'cs-handoff-'));
    const c = await buildCloud({ db: { kind: 'sqlite', file: join(dir, 'cs.db') }, district, profiles, source: { kind: 'in-process' }, escalation: false });
    cloud = c;
    await c.start();
    const store = CredentialStore.memory();
    store.create('gw-xz-gongbei', 'gateway', 'gongbei-password-1');
    gateway = buildGateway({ credentials: store, onPublishAuthorized: storeBeforePuback(() => c.ingest) });
    const { port } = await gateway.start();
    edge = await connectMqtt(`mqtt://127.0.0.1:${port}`, { username: 'gw-xz-gongbei', password: 'gongbei-password-1' });

    await edge.publishAsync('cs/v1/gw-xz-gongbei/up/XZ-MH-001', reading(1), { qos: 1 });
    expect(c.stats().stored).toBe(1); // at PUBACK time, already stored
    await edge.publishAsync('cs/v1/gw-xz-gongbei/up/XZ-MH-001', reading(1), { qos: 1 });
    expect(c.stats().duplicates).toBe(1);
    await edge.publishAsync('cs/v1/gw-xz-gongbei/up/XZ-MH-001', 'not json', { qos: 1 });
    expect(c.stats().rejected['bad-json']).toBe(1);

    await c.stop(); // the database goes away
    const lost = closed(edge);
    edge.publish('cs/v1/gw-xz-gongbei/up/XZ-MH-001', reading(2), { qos: 1 });
    await lost;
    // The broker side of the socket may close a moment after the edge's side.
    for (let i = 0; i < 100 && gateway.stats().connections > 0; i++) await new Promise((r) => setTimeout(r, 10));
    expect(gateway.stats().connections).toBe(0);
    expect(c.stats().failed).toBe(1);
  });
});

describe('edge alarms through the in-process hand-off', () => {
  it('an edge alarm through the in-process hand-off has raised its alarm and case, origin edge, by its PUBACK', async () => {
    dir = mkdtempSync(join(tmpdir(), 'cs-handoff-'));
    const c = await buildCloud({ db: { kind: 'sqlite', file: join(dir, 'cs.db') }, district, profiles, source: { kind: 'in-process' }, escalation: false, emergency: false });
    cloud = c;
    await c.start();
    const store = CredentialStore.memory();
    store.create('gw-xz-gongbei', 'gateway', 'gongbei-password-1');
    gateway = buildGateway({ credentials: store, onPublishAuthorized: storeBeforePuback(() => c.ingest) });
    const { port } = await gateway.start();
    edge = await connectMqtt(`mqtt://127.0.0.1:${port}`, { username: 'gw-xz-gongbei', password: 'gongbei-password-1' });

    const alarm = { seq: 5, ts: '2026-09-14T06:00:00.000Z', device: 'XZ-MH-001', rule: 'cover-tilted', hazard: 'cover-open', severity: 'major', point: 'tilt_deg', value: 35, limit: 10, active: true, since: '2026-09-14T05:59:58.000Z', historical: false };
    await edge.publishAsync('cs/v1/gw-xz-gongbei/alarm/XZ-MH-001', JSON.stringify(alarm), { qos: 1 });
    // At PUBACK time, already raised.
    expect(c.stats().edgeAlarms).toMatchObject({ stored: 1, raised: 1 });
    const db = openDatabase({ kind: 'sqlite', file: join(dir, 'cs.db') });
    try {
      expect(await db.db.selectFrom('alarms').select(['origin', 'hazard']).execute()).toEqual([{ origin: 'edge', hazard: 'cover-open' }]);
      expect(await db.db.selectFrom('cases').select(['hazard', 'state']).execute()).toEqual([{ hazard: 'cover-open', state: 'dispatched' }]);
    } finally {
      await db.close();
    }
    // A bad one is acknowledged (resending cannot fix it) and counted.
    await edge.publishAsync('cs/v1/gw-xz-gongbei/alarm/XZ-MH-001', JSON.stringify({ ...alarm, seq: 6, hazard: 'earthquake' }), { qos: 1 });
    expect(c.stats().edgeAlarms.rejected).toEqual({ 'unknown-hazard': 1 });
  });
});
