import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { topics } from '../../lib/topics.ts';
import pino from 'pino';
import { buildCloud, type Cloud, type CloudOptions, type DbOptions } from '../../cloud/app.ts';
import { openDatabase } from '../../cloud/db/database.ts';
import type { CsEvent } from '../../cloud/events.ts';
import { buildSimulator } from '../../devices/simulator.ts';
import { buildEdge } from '../../edge/edge.ts';
import { CredentialStore } from '../../gateway/credentials.ts';
import { buildGateway } from '../../gateway/gateway.ts';
import { district, freshDatabase, profiles } from './fixtures.ts';
import { eventually } from '../helpers/process.ts';

/**
 * Edge alarms count: the cloud consumes `cs/v1/{gw}/alarm/{device}`, and a raised one raises the
 * cloud alarm and its case at once, marked as raised at the edge, merged with the cloud's own rule
 * on the same hazard (never a second alarm or case); bad ones are rejected by reason and counted.
 */

const T0 = Date.parse('2026-11-25T02:00:00Z');
// XZ-MH-001: a manhole cover on gw-xz-gongbei, owned by zh-gas.
const MH = { gw: 'gw-xz-gongbei', id: 'XZ-MH-001' };
const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

function edgeAlarm(seq: number, fields: Record<string, unknown> = {}): Buffer {
  return Buffer.from(JSON.stringify({
    seq, ts: new Date(T0 + seq * 1000).toISOString(), device: MH.id, rule: 'cover-open', hazard: 'cover-open', severity: 'critical',
    point: 'cover_open', value: true, limit: true, active: true, since: new Date(T0 + seq * 1000).toISOString(), historical: false, ...fields,
  }));
}
function reading(seq: number, values: Record<string, unknown>): Buffer {
  return Buffer.from(JSON.stringify({ seq, ts: new Date(T0 + seq * 1000).toISOString(), device: MH.id, values, quality: 'good', historical: false }));
}

async function rows(db: DbOptions) {
  const d = openDatabase(db);
  await d.migrate();
  try {
    return {
      cases: await d.db.selectFrom('cases').selectAll().orderBy('id').execute(),
      alarms: await d.db.selectFrom('alarms').selectAll().orderBy('raised_at').execute(),
      history: await d.db.selectFrom('case_history').selectAll().orderBy('case_id').orderBy('seq').execute(),
      edge: await d.db.selectFrom('edge_alarms').selectAll().orderBy('seq').execute(),
    };
  } finally {
    await d.close();
  }
}

describe('edge alarms in the cloud', () => {
  let clock = T0;
  let lines: { level: number; msg: string; [k: string]: unknown }[] = [];
  async function cloudOn(extra: Partial<CloudOptions> = {}): Promise<{ cloud: Cloud; db: DbOptions; events: CsEvent[] }> {
    const fresh = await freshDatabase('sqlite');
    cleanups.push(fresh.drop);
    clock = T0;
    lines = [];
    const logger = pino({ level: 'debug' }, { write: (s: string) => { lines.push(JSON.parse(s)); } });
    const cloud = await buildCloud({ db: fresh.db, district, profiles, now: () => clock, escalation: false, emergency: false, logger, ...extra });
    cleanups.push(() => cloud.stop());
    await cloud.start();
    const events: CsEvent[] = [];
    cloud.events.subscribe((e) => events.push(e));
    return { cloud, db: fresh.db, events };
  }

  it('an edge alarm raises the cloud alarm and its case at once, both marked as raised at the edge', async () => {
    const { cloud, db, events } = await cloudOn();
    const r = await cloud.ingest(MH.gw, topics.alarm(MH.gw, MH.id), edgeAlarm(7));
    expect(r).toMatchObject({ status: 'stored', cases: [{ action: 'opened', hazard: 'cover-open', severity: 'critical' }], alarms: [{ action: 'raised' }] });
    const { cases, alarms, history, edge } = await rows(db);
    expect(cases).toMatchObject([{ device: MH.id, hazard: 'cover-open', class: 'urgent', state: 'dispatched', unit: 'zh-gas' }]);
    expect(alarms).toMatchObject([{ device: MH.id, hazard: 'cover-open', rule_id: 'cover-open', origin: 'edge', case_id: cases[0].id, cleared_at: null }]);
    expect(history[0].note).toMatch(/raised at the edge/);
    expect(cases[0].description).toMatch(/raised at the edge/);
    expect(edge).toMatchObject([{ gateway: MH.gw, seq: 7, active: 1, alarm_id: alarms[0].id }]);
    expect(events.map((e) => e.type)).toEqual(['alarm.raised', 'case.opened']);
    expect(cloud.stats().edgeAlarms).toMatchObject({ stored: 1, raised: 1, merged: 0 });
  });

  it('the readings after an edge alarm update its case and clear its alarm: never a second alarm or case', async () => {
    const { cloud, db } = await cloudOn();
    const up = topics.up(MH.gw, MH.id);
    await cloud.ingest(MH.gw, topics.alarm(MH.gw, MH.id), edgeAlarm(7));
    clock += 1000;
    expect(await cloud.ingest(MH.gw, up, reading(8, { cover_open: true, tilt_deg: 30 }))).toMatchObject({ cases: [{ action: 'updated' }], alarms: [] });
    clock += 5000;
    expect(await cloud.ingest(MH.gw, up, reading(9, { cover_open: true, tilt_deg: 30 }))).toMatchObject({ cases: [{ action: 'updated' }], alarms: [] });
    const mid = await rows(db);
    expect(mid.cases).toHaveLength(1);
    expect(mid.alarms).toHaveLength(1);
    clock += 1000;
    expect(await cloud.ingest(MH.gw, up, reading(10, { cover_open: false, tilt_deg: 0.5 }))).toMatchObject({ alarms: [{ action: 'cleared', hazard: 'cover-open' }] });
    const after = await rows(db);
    expect(after.cases).toMatchObject([{ breach_count: 3 }]);
    expect(after.alarms).toMatchObject([{ origin: 'edge', cleared_at: clock }]);
  });

  it('an edge alarm on a hazard the cloud\'s rule already raised merges into it: no second alarm, no second case', async () => {
    const { cloud, db } = await cloudOn();
    await cloud.ingest(MH.gw, topics.up(MH.gw, MH.id), reading(7, { cover_open: true }));
    const r = await cloud.ingest(MH.gw, topics.alarm(MH.gw, MH.id), edgeAlarm(8));
    expect(r).toMatchObject({ status: 'stored', cases: [], alarms: [] });
    const { cases, alarms, edge } = await rows(db);
    expect(cases).toMatchObject([{ breach_count: 1 }]);
    expect(alarms).toMatchObject([{ origin: 'cloud' }]);
    expect(edge).toMatchObject([{ seq: 8, alarm_id: alarms[0].id }]);
    expect(cloud.stats().edgeAlarms).toMatchObject({ stored: 1, raised: 0, merged: 1 });
  });

  it('a redelivered edge alarm (same gateway and seq) is stored once and changes nothing twice', async () => {
    const { cloud, db } = await cloudOn();
    await cloud.ingest(MH.gw, topics.alarm(MH.gw, MH.id), edgeAlarm(7));
    expect(await cloud.ingest(MH.gw, topics.alarm(MH.gw, MH.id), edgeAlarm(7))).toMatchObject({ status: 'duplicate', seq: 7 });
    expect((await rows(db)).cases).toMatchObject([{ breach_count: 1 }]);
    expect(cloud.stats().edgeAlarms).toMatchObject({ stored: 1, duplicates: 1 });
  });

  it('an edge alarm repeating a stored key with another payload is a conflict, counted and logged at warning with both hashes, not a silent duplicate', async () => {
    const { cloud, db } = await cloudOn();
    const t = topics.alarm(MH.gw, MH.id);
    expect((await cloud.ingest(MH.gw, t, edgeAlarm(7, { stream: 'ab' }))).status).toBe('stored');
    // A replay of the same alarm (historical) is a plain duplicate.
    expect((await cloud.ingest(MH.gw, t, edgeAlarm(7, { stream: 'ab', historical: true }))).status).toBe('duplicate');
    const clash = await cloud.ingest(MH.gw, t, edgeAlarm(7, { stream: 'ab', active: false, value: false }));
    expect(clash).toMatchObject({ status: 'conflict', stream: 'ab', seq: 7 });
    const { storedHash, hash } = clash as { storedHash: string; hash: string };
    expect(storedHash).not.toBe(hash);
    expect(cloud.stats().edgeAlarms).toMatchObject({ stored: 1, duplicates: 1, conflicts: 1 });
    const scrape = await cloud.app.inject({ url: '/metrics', headers: { authorization: `Bearer ${await cloud.tokens.create('admin')}` } });
    expect(scrape.body).toMatch(/^cs_cloud_edge_alarm_conflicts_total 1$/m);
    expect(lines.find((l) => l.level === 40 && /conflicting edge alarm/.test(l.msg))).toMatchObject({ gateway: MH.gw, device: MH.id, seq: 7, storedHash, hash });
    expect((await rows(db)).edge).toMatchObject([{ seq: 7, active: 1 }]);
  });

  it('one gateway flooding bad edge alarms writes a bounded number of warning lines and a count of the suppressed rest', async () => {
    const { cloud } = await cloudOn({ warnLimit: { windowMs: 60_000, max: 5 } });
    for (let i = 0; i < 100; i++) await cloud.ingest(MH.gw, topics.alarm(MH.gw, MH.id), Buffer.from('not json'));
    expect(cloud.stats().edgeAlarms).toMatchObject({ rejected: { 'bad-json': 100 }, warningsSuppressed: 95 });
    expect(lines.filter((l) => l.level === 40 && l.gateway === MH.gw)).toHaveLength(5);
    await cloud.stop();
    expect(lines.find((l) => l.suppressed === 95)).toMatchObject({ gateway: MH.gw });
  });

  it('an edge alarm whose check throws is rejected (acknowledged), not failed and redelivered forever', async () => {
    let armed = false;
    // The device's profile throws when its rule lookup reads it, once armed (after the cloud started).
    // The rule set cannot carry the fault: it is data, copied when the cloud takes it (cloud/config/).
    const profile = profiles.get(district.devices.find((d) => d.id === MH.id)!.profile)!;
    const exploding = new Proxy(profile, { get: (o, k) => { if (armed && k === 'id') throw new Error('rule lookup exploded'); return Reflect.get(o, k); } });
    const { cloud } = await cloudOn({ profiles: new Map([...profiles, [profile.id, exploding]]) });
    armed = true;
    const r = await cloud.ingest(MH.gw, topics.alarm(MH.gw, MH.id), edgeAlarm(3));
    expect(r).toMatchObject({ status: 'rejected', reason: 'invalid', message: expect.stringMatching(/rule lookup exploded/) });
    expect(cloud.stats().edgeAlarms).toMatchObject({ failed: 0, rejected: { invalid: 1 } });
    armed = false;
    expect((await cloud.ingest(MH.gw, topics.alarm(MH.gw, MH.id), edgeAlarm(4))).status).toBe('stored');
  });

  it('an edge alarm of an unknown device, hazard or rule, or malformed, is rejected with its reason and counted; the next good one is stored', async () => {
    const { cloud, db } = await cloudOn();
    const t = topics.alarm(MH.gw, MH.id);
    const bad: [string, Buffer, string][] = [
      ['unknown-device', edgeAlarm(1, { device: 'XZ-NOPE-1' }), topics.alarm(MH.gw, 'XZ-NOPE-1')],
      ['unknown-hazard', edgeAlarm(2, { hazard: 'earthquake' }), t],
      ['unknown-rule', edgeAlarm(3, { rule: 'cover-flipped' }), t],
      ['invalid', edgeAlarm(4, { severity: 'apocalyptic' }), t],
      ['invalid', edgeAlarm(5, { extra: 1 }), t],
      ['bad-json', Buffer.from('{"seq":'), t],
      ['device-mismatch', edgeAlarm(6, { device: 'XZ-MH-002' }), t],
      ['wrong-gateway', edgeAlarm(7), topics.alarm('gw-xz-jida', MH.id)],
    ];
    for (const [reason, payload, topic] of bad) {
      const gw = topic.split('/')[2];
      const r = await cloud.ingest(gw, topic, payload);
      expect(r, reason).toMatchObject({ status: 'rejected', reason });
      expect((r as { message: string }).message.length).toBeGreaterThan(10);
    }
    expect(cloud.stats().edgeAlarms.rejected).toEqual({ 'unknown-device': 1, 'unknown-hazard': 1, 'unknown-rule': 1, invalid: 2, 'bad-json': 1, 'device-mismatch': 1, 'wrong-gateway': 1 });
    expect((await rows(db)).cases).toEqual([]);
    expect(await cloud.ingest(MH.gw, t, edgeAlarm(9))).toMatchObject({ status: 'stored', cases: [{ action: 'opened' }] });
  });

  it('a historical (replayed) edge alarm, or an edge clear, is stored but opens and clears nothing by itself', async () => {
    const { cloud, db } = await cloudOn();
    const t = topics.alarm(MH.gw, MH.id);
    expect(await cloud.ingest(MH.gw, t, edgeAlarm(3, { historical: true }))).toMatchObject({ status: 'stored', cases: [], alarms: [] });
    expect((await rows(db)).alarms).toEqual([]);
    await cloud.ingest(MH.gw, t, edgeAlarm(4));
    // The edge's clear: the cloud's rules clear the alarm on the readings (hysteresis), not the edge.
    expect(await cloud.ingest(MH.gw, t, edgeAlarm(5, { active: false, value: false }))).toMatchObject({ status: 'stored', cases: [], alarms: [] });
    const { alarms, edge } = await rows(db);
    expect(alarms).toMatchObject([{ origin: 'edge', cleared_at: null }]);
    expect(edge.map((e) => [e.seq, e.active, e.historical])).toEqual([[3, 1, 1], [4, 1, 0], [5, 0, 0]]);
  });
});

describe('an edge alarm from a real edge through a real broker', () => {
  it('an edge alarm published by a real edge through the authenticated broker opens the case at once, with origin edge', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'cs-edge-alarm-'));
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
    const fresh = await freshDatabase('sqlite');
    cleanups.push(fresh.drop);
    const store = CredentialStore.memory();
    store.create(MH.gw, 'gateway', 'gongbei-password-1');
    store.create('cloud', 'service', 'cloud-password-01');
    const gateway = buildGateway({ credentials: store });
    cleanups.push(() => gateway.stop());
    const { port } = await gateway.start();
    const url = `mqtt://127.0.0.1:${port}`;
    const cloud = await buildCloud({ db: fresh.db, district, profiles, mqtt: { url, username: 'cloud', password: 'cloud-password-01' }, escalation: false, emergency: false });
    cleanups.push(() => cloud.stop());
    await cloud.start();

    const sim = buildSimulator({ port: 0, devices: [{ id: MH.id, profile: profiles.get('manhole-cover')!, unitId: 1 }] });
    await sim.start();
    cleanups.push(() => sim.stop());
    const edge = buildEdge({
      config: {
        gateway: MH.gw, mqtt: { url, username: MH.gw, password: 'gongbei-password-1' }, pollMs: 200, healthMs: 0,
        alarms: { enabled: true, debounceMs: 0 },
        buses: [{ id: 'bus-a', host: '127.0.0.1', port: sim.port, timeoutMs: 500 }],
        devices: [{ id: MH.id, profile: 'manhole-cover', bus: 'bus-a', unitId: 1 }],
      },
      profiles, dataDir: dir, reconnectMs: 100,
    });
    cleanups.push(() => edge.stop());
    await edge.start();
    await eventually(() => cloud.stats().stored >= 2, 10_000);

    // The cover is lifted: the edge's rule (no hold time for the flag) raises it on this poll.
    sim.set(MH.id, 'cover_open', 1);
    await eventually(() => cloud.stats().edgeAlarms.raised >= 1, 10_000);
    const first = await rows(fresh.db);
    expect(first.cases).toMatchObject([{ device: MH.id, hazard: 'cover-open', severity: 'critical', state: 'dispatched' }]);
    expect(first.alarms).toMatchObject([{ origin: 'edge', rule_id: 'cover-open', case_id: first.cases[0].id }]);
    expect(first.history[0].note).toMatch(/raised at the edge/);
    // The readings that follow update that case; there is never a second one.
    const stored = cloud.stats().stored;
    await eventually(() => cloud.stats().stored >= stored + 3, 10_000);
    const later = await rows(fresh.db);
    expect(later.cases).toHaveLength(1);
    expect(later.alarms).toHaveLength(1);
    expect(later.cases[0].breach_count).toBeGreaterThan(1);
    expect(cloud.stats().edgeAlarms).toMatchObject({ rejected: {}, failed: 0 });
  });
});
