import type { AddressInfo } from 'node:net';
import mqtt, { type MqttClient } from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { topics } from '../../lib/topics.ts';
import type { Cloud } from '../../cloud/app.ts';
import { createModeProvider } from '../../cloud/mode.ts';
import type { EdgeHealth } from '../../lib/messages.ts';
import { eventually } from '../helpers/process.ts';
import { district, profiles, reading } from './fixtures.ts';
import { startBroker, startCloud, type StartedCloud, type TestBroker } from './harness.ts';

/**
 * The operator's device data over a real server on loopback, a temp SQLite and an in-process
 * broker carrying the gateways' state and health: filters, status (normal, alarm, silent,
 * offline), tier under the thresholds in force (emergency limits in emergency mode), thresholds,
 * a device's health after its gateway's report, the gateways.
 */

const T0 = Date.parse('2026-11-25T02:00:00Z');

function health(gateway: string, device: string): EdgeHealth {
  const slave = {
    device, unitId: 1, ok: 120, timeout: 5, crc: 2, exception: 0, wrongUnit: 0, truncated: 0, badFrame: 1, busDown: 0, decode: 0,
    skipped: 3, probes: 1, breaker: 'open' as const, consecutiveFaults: 4, backoffMs: 8000, lastFault: 'timeout',
  };
  return {
    ts: new Date(T0).toISOString(), gateway, mode: 'fast', seq: 9, published: 130, suppressed: 0,
    outbox: { depth: 17, appended: 147, acked: 130, dropped: 0, inflight: 2, oldestSeq: 131 },
    buses: { 'bus-jida-a': { ok: 120, errors: 8, link: { opens: 1, openFailures: 0, drops: 0, requests: 128, late: 0, open: true }, slaves: [slave] } },
  };
}

describe('operator device data', () => {
  let broker: TestBroker;
  let h: StartedCloud;
  let cloud: Cloud;
  let client: MqttClient;
  let base: string;
  let clock = T0;
  const mode = createModeProvider(false);
  const tok: Record<string, string> = {};

  const get = async (path: string, who = 'operator') => {
    const r = await fetch(`${base}${path}`, { headers: { authorization: `Bearer ${tok[who]}` } });
    return { status: r.status, body: await r.json() as any };
  };
  const ids = async (query: string, who = 'operator') => ((await get(`/api/devices${query}`, who)).body.items as { id: string }[]).map((d) => d.id).sort();

  beforeAll(async () => {
    broker = await startBroker();
    const url = broker.url;
    h = await startCloud('sqlite', {
      district, profiles, now: () => clock, escalation: false, mode,
      mqtt: { url, username: 'cloud', password: 'unused-by-this-broker' },
    });
    cloud = h.cloud;
    for (const [name, role, unit] of [['operator', 'operator'], ['commander', 'commander'], ['drainage', 'crew', 'xz-drainage'], ['gas', 'crew', 'zh-gas']] as const) {
      tok[name] = await cloud.tokens.create(role, unit);
    }
    const up = (gw: string, device: string, values: Record<string, unknown>) => cloud.ingest(gw, topics.up(gw, device), reading(device, 1, clock, values));
    // Above the first water tier (0.70) and below the second (0.85; 0.75 in emergency mode): an alarm and a case for xz-drainage.
    await up('gw-xz-jida', 'XZ-WL-001', { level_m: 0.8, battery_pct: 90 });
    await up('gw-xz-jida', 'XZ-WL-002', { level_m: 0.1, battery_pct: 90 });
    await up('gw-xz-gongbei', 'XZ-WL-003', { level_m: 0.1, battery_pct: 90 });
    await up('gw-xz-jida', 'XZ-MH-003', { tilt_deg: 0.5, cover_open: false });
    client = await mqtt.connectAsync(url, { protocolVersion: 4, clientId: 'test-edge' });
    await client.publishAsync(topics.state('gw-xz-gongbei'), JSON.stringify({ online: false, bdSeq: 1, ts: new Date(T0).toISOString() }), { qos: 1, retain: true });
    await client.publishAsync(topics.state('gw-xz-jida'), JSON.stringify({ online: true, bdSeq: 1, ts: new Date(T0).toISOString() }), { qos: 1, retain: true });
    await client.publishAsync(topics.health('gw-xz-jida'), JSON.stringify(health('gw-xz-jida', 'XZ-WL-001')), { qos: 1 });
    await cloud.app.listen({ port: 0, host: '127.0.0.1' });
    base = `http://127.0.0.1:${(cloud.app.server.address() as AddressInfo).port}`;
    // The gongbei gateway offline, the jida health report in.
    await eventually(async () => (await get('/api/devices/XZ-WL-003')).body.status === 'offline', 5000, 10);
    await eventually(async () => (await get('/api/devices/XZ-WL-001/health')).body.breaker === 'open', 5000, 10);
  });

  afterAll(async () => {
    await client?.endAsync();
    await h?.stop();
    await broker?.close();
  });

  it('gives each device a status: alarm, normal, offline with its gateway, silent when never heard or past its no-data rule', async () => {
    const items = new Map(((await get('/api/devices')).body.items as any[]).map((d) => [d.id, d]));
    expect(items.get('XZ-WL-001')).toMatchObject({ status: 'alarm', tier: 'minor', district: '440402', lastSeen: new Date(T0).toISOString(), link: 'online', openCases: 1 });
    expect(items.get('XZ-WL-002')).toMatchObject({ status: 'normal', tier: null });
    expect(items.get('XZ-WL-003')).toMatchObject({ status: 'offline', link: 'offline' });
    expect(items.get('XZ-PL-001')).toMatchObject({ status: 'offline', lastSeen: null }); // never heard, but behind the offline gateway
    expect(items.get('XZ-PL-003')).toMatchObject({ status: 'silent', lastSeen: null, tier: null });
    // The no-data rule: 3 polls of 1 s. At 3 s still normal; past it, silent.
    clock = T0 + 3000;
    expect((await get('/api/devices/XZ-WL-002')).body.status).toBe('normal');
    clock = T0 + 3001;
    try {
      expect((await get('/api/devices/XZ-WL-002')).body.status).toBe('silent');
      expect((await get('/api/devices/XZ-WL-001')).body.status).toBe('silent');
    } finally {
      clock = T0;
    }
  });

  it('judges the tier by the emergency thresholds while emergency mode is on', async () => {
    mode.set(true);
    try {
      expect((await get('/api/devices/XZ-WL-001')).body.tier).toBe('major');
      const t = (await get('/api/devices/XZ-WL-001/thresholds')).body;
      expect(t.inForce).toBe('emergency');
      expect(t.normal.find((r: any) => r.id === 'level-tier2')).toEqual({ id: 'level-tier2', hazard: 'waterlogging', point: 'level_m', op: '>', value: 0.85, severity: 'major', class: 'urgent' });
      expect(t.emergency.find((r: any) => r.id === 'level-tier2')).toMatchObject({ value: 0.75, severity: 'major' });
      // A rule without an emergency limit keeps its normal one.
      expect(t.emergency.find((r: any) => r.id === 'battery-low').value).toBe(20);
      expect(t.ranges).toContainEqual({ id: 'level-m-range', point: 'level_m', min: -0.5, max: 10 });
    } finally {
      mode.set(false);
    }
    expect((await get('/api/devices/XZ-WL-001')).body.tier).toBe('minor');
    expect((await get('/api/devices/XZ-WL-001/thresholds')).body.inForce).toBe('normal');
  });

  it('filters by text, kind, unit, district, status and open cases, on the server', async () => {
    expect(await ids('?q=4404020520000001')).toEqual(['XZ-WL-001']);
    expect(await ids('?q=xz-wl-00')).toHaveLength(8);
    const fenghuang = district.devices.filter((d) => d.name.includes('凤凰') || d.address?.includes('凤凰')).map((d) => d.id).sort();
    expect(fenghuang.length).toBeGreaterThan(0);
    expect(await ids(`?q=${encodeURIComponent('凤凰')}`)).toEqual(fenghuang);
    expect(await ids('?kind=pipeline')).toHaveLength(6);
    expect(await ids('?unit=zh-water')).toEqual(district.devices.filter((d) => d.ownerUnit === 'zh-water').map((d) => d.id).sort());
    expect(await ids('?unit=iot-ops')).toHaveLength(district.devices.length);
    expect(await ids('?district=440402')).toHaveLength(district.devices.length);
    expect(await ids('?district=440403')).toEqual([]);
    expect(await ids('?status=alarm')).toEqual(['XZ-WL-001']);
    expect(await ids('?status=normal&kind=water-level')).toEqual(['XZ-WL-002']);
    expect(await ids('?hasOpenCases=true')).toEqual(['XZ-WL-001']);
    expect(await ids('?hasOpenCases=false&kind=water-level')).toHaveLength(7);
    // A crew sees every device but counts only its own unit's cases.
    expect(await ids('?hasOpenCases=true', 'drainage')).toEqual(['XZ-WL-001']);
    expect(await ids('?hasOpenCases=true', 'gas')).toEqual([]);
    expect((await get('/api/devices?kind=water-level', 'gas')).body.items).toHaveLength(8);
    const bad = await get('/api/devices?status=broken');
    expect(bad.status).toBe(400);
    expect(bad.body.message).toMatch(/status/);
  });

  it('reports a device\'s gateway, breaker, faults and outbox from the gateway\'s health report', async () => {
    clock = T0 + 60_000;
    try {
      const h = await get('/api/devices/XZ-WL-001/health');
      expect(h.status).toBe(200);
      expect(h.body).toEqual({
        device: 'XZ-WL-001',
        gateway: { id: 'gw-xz-jida', online: true, lastSeen: new Date(T0).toISOString(), mode: 'fast' },
        reportedAt: new Date(T0).toISOString(),
        breaker: 'open',
        faults: { timeout: 5, crc: 2, exception: 0, wrongUnit: 0, truncated: 0, badFrame: 1, busDown: 0, decode: 0 },
        consecutiveFaults: 4,
        lastFault: 'timeout',
        // A backlog of 17: at most as old as the newest reading the cloud holds from the gateway.
        outbox: { depth: 17, oldestAgeMs: 60_000 },
      });
      // A device the report does not name: the gateway's part only.
      expect((await get('/api/devices/XZ-WL-002/health')).body).toMatchObject({ breaker: null, faults: {}, outbox: { depth: 17 } });
      // No report from the other gateway yet.
      expect((await get('/api/devices/XZ-WL-003/health')).body).toMatchObject({ gateway: { id: 'gw-xz-gongbei', online: false, mode: null }, reportedAt: null, outbox: { depth: null, oldestAgeMs: null } });
    } finally {
      clock = T0;
    }
  });

  it('lists the gateways for operators and commanders, not crews', async () => {
    const r = await get('/api/gateways', 'commander');
    expect(r.status).toBe(200);
    expect(r.body).toEqual([
      { id: 'gw-xz-gongbei', name: expect.any(String), online: false, lastSeen: new Date(T0).toISOString(), mode: null, outboxDepth: null, devices: 16 },
      { id: 'gw-xz-jida', name: expect.any(String), online: true, lastSeen: new Date(T0).toISOString(), mode: 'fast', outboxDepth: 17, devices: 14 },
    ]);
    expect((await get('/api/gateways', 'gas')).status).toBe(403);
  });

  it('answers 404 for an unknown device on every device route', async () => {
    for (const p of ['', '/health', '/thresholds', '/readings']) {
      const r = await get(`/api/devices/XZ-NOPE${p}`);
      expect(r.status, p).toBe(404);
      expect(r.body.code, p).toBe('CS_CLOUD_DEVICE_NOT_FOUND');
    }
  });
});
