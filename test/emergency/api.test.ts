import { readFileSync } from 'node:fs';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { buildCloud, type Cloud } from '../../cloud/app.ts';
import { topics } from '../../lib/topics.ts';
import { gatewayOf } from '../../devices/district.ts';
import { BACKENDS, district, freshDatabase, profiles } from '../cloud/fixtures.ts';

const fixture = (name: string) => readFileSync(new URL(`../fixtures/cap/${name}.xml`, import.meta.url), 'utf8');
const HOUR = 3600_000;
// Monday 2026-09-14 10:00 in Zhuhai (UTC+8).
const T0 = Date.parse('2026-09-14T02:00:00Z');

describe.each(BACKENDS)('emergency mode through the API ($backend)', ({ backend, skip }) => {
  let cloud: Cloud;
  let drop: () => Promise<void>;
  let db: Awaited<ReturnType<typeof freshDatabase>>['db'];
  let t = T0;
  let seq = 0;
  const tokens: Record<string, string> = {};

  async function start(): Promise<Cloud> {
    const c = await buildCloud({ db, district, profiles, now: () => t, escalation: false });
    await c.start();
    return c;
  }
  const as = (role: string) => ({ authorization: `Bearer ${tokens[role]}` });
  const cap = (name: string, role = 'commander') => cloud.app.inject({ method: 'POST', url: '/api/warnings', headers: { ...as(role), 'content-type': 'application/cap+xml' }, payload: fixture(name) });
  const reading = async (device: string, values: Record<string, unknown>) => {
    const gw = gatewayOf(district, district.devices.find((d) => d.id === device)!);
    const r = await cloud.ingest(gw, topics.up(gw, device), Buffer.from(JSON.stringify({ seq: ++seq, ts: new Date(t).toISOString(), device, values, quality: 'good', historical: false })));
    expect(r.status, JSON.stringify(r)).toBe('stored');
  };
  const caseOf = async (device: string) => ((await cloud.app.inject({ url: `/api/cases?device=${device}`, headers: as('operator') })).json() as { items: Record<string, any>[] }).items;

  beforeEach(async (ctx) => {
    if (skip) return ctx.skip();
    ({ db, drop } = await freshDatabase(backend));
    t = T0;
    cloud = await start();
    for (const role of ['admin', 'operator', 'commander', 'verifier'] as const) tokens[role] = await cloud.tokens.create(role);
    tokens.crew = await cloud.tokens.create('crew', 'xz-drainage');
  });

  afterEach(async () => {
    if (skip) return;
    await cloud.stop();
    await drop();
  });

  it('answers each CAP fixture as described: accepted, duplicate, update, test ignored, cancel, and clear 4xx for bad documents', async () => {
    const first = await cap('orange-typhoon');
    expect(first.statusCode).toBe(202);
    expect(first.json()).toMatchObject({ duplicate: false, decision: { action: 'enter', level: 'II' }, mode: { mode: 'emergency', level: 'II' } });
    expect((await cap('orange-typhoon')).json()).toMatchObject({ duplicate: true });
    expect((await cap('update-red')).json()).toMatchObject({ mode: { mode: 'emergency', level: 'I' } });
    expect((await cap('test-status')).json()).toMatchObject({ decision: { action: 'ignore' }, mode: { level: 'I' } });
    expect((await cap('cancel')).json()).toMatchObject({ decision: { action: 'cancel' }, mode: { mode: 'normal' } });

    const bad = { 'not-xml': [400, 'CS_CAP_NOT_XML'], 'wrong-namespace': [422, 'CS_CAP_NAMESPACE'], 'invalid-missing-identifier': [422, 'CS_CAP_INVALID'], doctype: [400, 'CS_CAP_DOCTYPE'] } as const;
    for (const [name, [status, code]] of Object.entries(bad)) {
      const r = await cap(name);
      expect(r.statusCode, name).toBe(status);
      expect(r.json(), name).toMatchObject({ statusCode: status, code, error: expect.any(String), message: expect.any(String) });
    }
    const json = await cloud.app.inject({ method: 'POST', url: '/api/warnings', headers: as('commander'), payload: { hello: 'x' } });
    expect(json.statusCode).toBe(415);
  });

  it('lets only commanders and admins switch the mode or post warnings, and records who did it', async () => {
    for (const role of ['operator', 'verifier', 'crew']) {
      const r = await cloud.app.inject({ method: 'POST', url: '/api/emergency', headers: as(role), payload: { mode: 'emergency', level: 'II', reason: 'x'.repeat(5) } });
      expect(r.statusCode, role).toBe(403);
      expect((await cap('orange-typhoon', role)).statusCode, role).toBe(403);
    }
    const missingLevel = await cloud.app.inject({ method: 'POST', url: '/api/emergency', headers: as('commander'), payload: { mode: 'emergency', reason: 'typhoon coming' } });
    expect(missingLevel.statusCode).toBe(400);
    expect(missingLevel.json().message).toContain('level');
    const on = await cloud.app.inject({ method: 'POST', url: '/api/emergency', headers: as('commander'), payload: { mode: 'emergency', level: 'III', reason: 'typhoon coming' } });
    expect(on.statusCode).toBe(200);
    const status = (await cloud.app.inject({ url: '/api/emergency', headers: as('operator') })).json();
    expect(status).toMatchObject({ mode: 'emergency', level: 'III', source: 'manual', reason: 'typhoon coming', unitsOnDuty: true });
    expect(status.log[0]).toMatchObject({ action: 'enter', role: 'commander', actor: expect.stringMatching(/^token:/) });
    expect((await cloud.app.inject({ url: '/api/emergency' })).statusCode).toBe(401);
  });

  it('registers cases in emergency mode due within 12 hours, and they keep their emergency period after the mode ends', async () => {
    await cloud.app.inject({ method: 'POST', url: '/api/emergency', headers: as('commander'), payload: { mode: 'emergency', level: 'II', reason: 'orange signal' } });
    // Pipeline pressure above band is routine (1 working day) in normal mode.
    await reading('XZ-PL-003', { pressure_mpa: 0.7, flow_m3h: 100 });
    const [c] = await caseOf('XZ-PL-003');
    expect(c).toMatchObject({ hazard: 'pressure-high', class: 'routine', emergency: true, emergencyPeriod: 1 });
    expect(Date.parse(c.deadline) - Date.parse(c.openedAt)).toBeLessThanOrEqual(12 * HOUR);

    t += HOUR;
    await cloud.app.inject({ method: 'POST', url: '/api/emergency', headers: as('commander'), payload: { mode: 'normal', reason: 'signal lifted' } });
    const [after] = await caseOf('XZ-PL-003');
    expect(after).toMatchObject({ emergency: true, emergencyPeriod: 1, deadline: c.deadline });

    // In normal mode the same hazard elsewhere is an ordinary routine case.
    await reading('XZ-PL-005', { pressure_mpa: 0.7, flow_m3h: 100 });
    const [normal] = await caseOf('XZ-PL-005');
    expect(normal).toMatchObject({ emergency: false, emergencyPeriod: null });
    expect(Date.parse(normal.deadline) - Date.parse(normal.openedAt)).toBeGreaterThan(12 * HOUR);
  });

  it('pulls the deadline of an open routine case in to 12 hours from the switch', async () => {
    await reading('XZ-PL-003', { pressure_mpa: 0.7, flow_m3h: 100 });
    const [before] = await caseOf('XZ-PL-003');
    expect(Date.parse(before.deadline) - T0).toBeGreaterThan(12 * HOUR);
    t += 2 * HOUR;
    await cloud.app.inject({ method: 'POST', url: '/api/emergency', headers: as('commander'), payload: { mode: 'emergency', level: 'II', reason: 'orange signal' } });
    const [after] = await caseOf('XZ-PL-003');
    expect(Date.parse(after.deadline)).toBe(t + 12 * HOUR);
    expect(after).toMatchObject({ emergency: true, emergencyPeriod: 1 });
  });

  it('keeps emergency mode across a cloud restart', async () => {
    await cap('orange-typhoon');
    await cloud.stop();
    cloud = await start();
    const status = (await cloud.app.inject({ url: '/api/emergency', headers: as('commander') })).json();
    expect(status).toMatchObject({ mode: 'emergency', level: 'II', source: 'warning', alerts: ['GD-ZH-2026-TY-0917-001'] });
    // A repeat of the same warning after the restart is still recognised.
    expect((await cap('orange-typhoon')).json()).toMatchObject({ duplicate: true });
  });

  it('shows the command centre open emergency cases by deadline, overdue ones, counts, gateways and water tiers', async () => {
    await cloud.app.inject({ method: 'POST', url: '/api/emergency', headers: as('commander'), payload: { mode: 'emergency', level: 'II', reason: 'orange signal' } });
    await reading('XZ-WL-001', { level_m: 0.97, battery_pct: 90 });
    await reading('XZ-MH-004', { tilt_deg: 0.5, cover_open: false, water_depth_m: 0.8, gas_ch4_ppm: 10, gas_h2s_ppm: 0.2, battery_pct: 80 });
    t += 13 * HOUR;
    const board = (await cloud.app.inject({ url: '/api/situation', headers: as('commander') })).json();
    expect(board.mode).toMatchObject({ mode: 'emergency', level: 'II' });
    expect(board.openEmergencyCases.map((c: { device: string }) => c.device).sort()).toEqual(['XZ-MH-004', 'XZ-WL-001']);
    const deadlines = board.openEmergencyCases.map((c: { deadline: string }) => Date.parse(c.deadline));
    expect(deadlines).toEqual([...deadlines].sort((a, b) => a - b));
    expect(board.overdue).toHaveLength(2);
    expect(board.countsByDistrict).toEqual({ '440402': 2 });
    expect(board.countsByUnit['xz-drainage']).toBe(1);
    expect(board.waterTiers['level-tier3']).toEqual(['XZ-WL-001']);
    expect(board.gateways.missing.map((g: { gateway: string }) => g.gateway).sort()).toEqual(['gw-xz-gongbei', 'gw-xz-jida']);
    expect(board.unitsOnDuty.length).toBe(district.units.length);
    expect((await cloud.app.inject({ url: '/api/situation', headers: as('crew') })).statusCode).toBe(403);
  });
});
