import { readFileSync } from 'node:fs';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { buildCloud, type Cloud } from '../../cloud/app.ts';
import { topics } from '../../lib/topics.ts';
import { gatewayOf } from '../../devices/district.ts';
import { BACKENDS, district, freshDatabase, profiles } from '../cloud/fixtures.ts';

const fixture = (name: string) => readFileSync(new URL(`../fixtures/cap/${name}.xml`, import.meta.url), 'utf8');
/** The orange warning with another identifier, `sent` and info `expires`. */
const orange = (o: { id: string; sent: number; expires?: number }) => fixture('orange-typhoon')
  .replace(/<identifier>[^<]+</, `<identifier>${o.id}<`)
  .replace(/<sent>[^<]+</, `<sent>${new Date(o.sent).toISOString().replace(/\.\d+Z$/, '+00:00')}<`)
  .replace('<headline>', o.expires === undefined ? '<headline>' : `<expires>${new Date(o.expires).toISOString().replace(/\.\d+Z$/, '+00:00')}</expires><headline>`);
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
  const post = (xml: string) => cloud.app.inject({ method: 'POST', url: '/api/warnings', headers: { ...as('commander'), 'content-type': 'application/cap+xml' }, payload: xml });
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
    // The cancel was sent the next morning; it arrives then.
    t = Date.parse('2026-09-15T02:00:00Z');
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

  it('labels a board case by its class and its emergency period apart: an urgent case opened in normal mode has no period; a routine one opened in emergency mode has one', async () => {
    await reading('XZ-MH-004', { tilt_deg: 0.5, cover_open: false, water_depth_m: 0.8, gas_ch4_ppm: 10, gas_h2s_ppm: 0.2, battery_pct: 80 });
    let board = (await cloud.app.inject({ url: '/api/situation', headers: as('commander') })).json();
    const urgent = board.openEmergencyCases.find((c: { device: string }) => c.device === 'XZ-MH-004');
    expect(urgent).toMatchObject({ class: 'urgent', emergencyPeriod: null, title: expect.any(String), address: expect.any(String), openedAt: new Date(T0).toISOString() });
    await cloud.app.inject({ method: 'POST', url: '/api/emergency', headers: as('commander'), payload: { mode: 'emergency', level: 'II', reason: 'orange signal' } });
    t += 60_000;
    await reading('XZ-PL-003', { pressure_mpa: 0.7, flow_m3h: 100 });
    board = (await cloud.app.inject({ url: '/api/situation', headers: as('commander') })).json();
    expect(board.openEmergencyCases.find((c: { device: string }) => c.device === 'XZ-PL-003')).toMatchObject({ class: 'routine', emergencyPeriod: 1 });
  });

  it('gives the board the gateways\' acknowledgements as n of N with the missing named, the warnings received with what each did, and every unit\'s open and overdue cases with its duty contact', async () => {
    expect((await cap('orange-typhoon')).statusCode).toBe(202);
    t += 60_000;
    expect((await cap('test-status')).statusCode).toBe(202);
    const { id } = cloud.emergency!.status().gateways;
    cloud.emergency!.fanout.onAck('gw-xz-jida', { id, outcome: 'ok' });
    cloud.emergency!.fanout.onAck('gw-xz-gongbei', { id, outcome: 'rejected', message: 'fast mode not allowed by config' });
    await reading('XZ-WL-001', { level_m: 0.97, battery_pct: 90 });
    t += 13 * HOUR;
    const board = (await cloud.app.inject({ url: '/api/situation', headers: as('commander') })).json();
    expect(board.gateways).toMatchObject({ command: 'fast', acknowledgedCount: 1, total: 2 });
    expect(board.gateways.acknowledged.map((g: { gateway: string }) => g.gateway)).toEqual(['gw-xz-jida']);
    expect(board.gateways.missing).toEqual([expect.objectContaining({ gateway: 'gw-xz-gongbei', outcome: 'rejected', message: 'fast mode not allowed by config' })]);
    // Newest first, each with its decision; the one holding the mode is in force.
    expect(board.warnings).toEqual([
      expect.objectContaining({ status: 'Test', decision: expect.objectContaining({ action: 'ignore' }), inForce: false }),
      expect.objectContaining({ identifier: 'GD-ZH-2026-TY-0917-001', msgType: 'Alert', decision: expect.objectContaining({ action: 'enter', level: 'II' }), inForce: true, receivedAt: new Date(T0).toISOString() }),
    ]);
    const drainage = board.units.find((u: { id: string }) => u.id === 'xz-drainage');
    expect(drainage).toEqual({ id: 'xz-drainage', name: expect.any(String), dutyContact: '+86 756 000 0303', onDuty: true, openCases: 1, overdueCases: 1, emergencyCases: 1 });
    expect(board.units).toHaveLength(district.units.length);
    const mode = (await cloud.app.inject({ url: '/api/emergency', headers: as('operator') })).json();
    expect(mode.warnings.map((w: { inForce: boolean }) => w.inForce)).toEqual([false, true]);
    expect(mode.gateways).toMatchObject({ total: 2 });
  });

  it('entering emergency mode rewrote open cases\' deadlines and left no history: each tightened case now has a system row naming the period, recomputed milestones and a case.updated event; device health is untouched', async () => {
    // Tier 1 waterlogging is routine (1 working day, no sub-deadlines); the low battery is device health.
    await reading('XZ-WL-002', { level_m: 0.75, battery_pct: 10 });
    const before = await caseOf('XZ-WL-002');
    const water = before.find((c) => c.hazard === 'waterlogging')!;
    const battery = before.find((c) => c.hazard === 'low-battery')!;
    expect(water).toMatchObject({ class: 'routine', milestones: [], emergency: false });
    const events: { type: string; caseId?: string; data?: Record<string, unknown> }[] = [];
    const unsubscribe = cloud.events.subscribe((e) => events.push(e));

    t += 2 * HOUR;
    const on = await cloud.app.inject({ method: 'POST', url: '/api/emergency', headers: as('commander'), payload: { mode: 'emergency', level: 'II', reason: 'orange signal' } });
    expect(on.statusCode).toBe(200);
    unsubscribe();
    const detail = (await cloud.app.inject({ url: `/api/cases/${water.id}`, headers: as('operator') })).json();
    expect(detail).toMatchObject({ emergency: true, emergencyPeriod: 1, deadline: new Date(t + 12 * HOUR).toISOString() });
    // Sub-deadlines counted from the switch, as the deadline is: on site within 1 hour.
    expect(detail.milestones).toEqual([{ name: 'on-site', due: new Date(t + HOUR).toISOString(), reachedAt: null }]);
    const row = detail.history.at(-1);
    expect(row).toMatchObject({ action: 'emergency', role: 'system', at: new Date(t).toISOString(), reason: expect.stringContaining('period 1') });
    expect(row.details).toMatchObject({ epoch: 1, level: 'II', deadline: { from: water.deadline, to: new Date(t + 12 * HOUR).toISOString() } });
    expect(events).toContainEqual(expect.objectContaining({ type: 'case.updated', caseId: water.id, data: expect.objectContaining({ reason: 'emergency', epoch: 1 }) }));

    const health = (await cloud.app.inject({ url: `/api/cases/${battery.id}`, headers: as('operator') })).json();
    expect(health).toMatchObject({ emergency: false, emergencyPeriod: null, deadline: battery.deadline });
    expect(health.history.map((h: { action: string }) => h.action)).not.toContain('emergency');
    expect(events.filter((e) => e.caseId === battery.id)).toEqual([]);
  });

  it('an expired warning switched the city into emergency mode: one whose every info block expired, or sent far in the future, is refused 422 with its own code', async () => {
    // Posted today, expired two months earlier.
    const stale = await post(orange({ id: 'STALE-1', sent: T0 - 62 * 24 * HOUR, expires: T0 - 60 * 24 * HOUR }));
    expect(stale.statusCode).toBe(422);
    expect(stale.json()).toMatchObject({ statusCode: 422, code: 'CS_CAP_EXPIRED', message: expect.stringContaining('STALE-1') });
    const ahead = await post(orange({ id: 'AHEAD-1', sent: T0 + HOUR }));
    expect(ahead.statusCode).toBe(422);
    expect(ahead.json()).toMatchObject({ code: 'CS_CAP_SENT_IN_FUTURE' });
    // Within the default 5 minutes of skew, and still in force: accepted.
    const fresh = await post(orange({ id: 'FRESH-1', sent: T0 + 4 * 60_000, expires: T0 + 6 * HOUR }));
    expect(fresh.statusCode).toBe(202);
    expect(fresh.json()).toMatchObject({ mode: { mode: 'emergency', level: 'II' } });
    // The refused ones were never recorded: the same documents later are judged afresh, not as duplicates.
    expect((await post(orange({ id: 'STALE-1', sent: T0 - 62 * 24 * HOUR, expires: T0 - 60 * 24 * HOUR }))).statusCode).toBe(422);
  });

  it('the warning in force expired and the commander was not told: the board shows a line and one event is emitted; the mode stays for a human to end', async () => {
    expect((await post(orange({ id: 'TY-EXP-1', sent: T0, expires: T0 + 3 * HOUR }))).statusCode).toBe(202);
    let board = (await cloud.app.inject({ url: '/api/situation', headers: as('commander') })).json();
    expect(board.notices).toEqual([]);
    const events: { type: string; data?: Record<string, unknown> }[] = [];
    const unsubscribe = cloud.events.subscribe((e) => events.push(e));
    try {
      t = T0 + 3 * HOUR + 1000;
      expect(await cloud.emergency!.checkExpiry()).toHaveLength(1);
      expect(await cloud.emergency!.checkExpiry()).toEqual([]);
    } finally {
      unsubscribe();
    }
    expect(events).toEqual([expect.objectContaining({ type: 'emergency.warning-expired', data: expect.objectContaining({ identifier: 'TY-EXP-1', level: 'II' }) })]);
    board = (await cloud.app.inject({ url: '/api/situation', headers: as('commander') })).json();
    expect(board.mode).toMatchObject({ mode: 'emergency', level: 'II' });
    expect(board.notices).toEqual([expect.objectContaining({ kind: 'warning-expired', identifier: 'TY-EXP-1', at: new Date(T0 + 3 * HOUR).toISOString(), message: expect.stringContaining('until a commander ends it') })]);
    const status = (await cloud.app.inject({ url: '/api/emergency', headers: as('commander') })).json();
    expect(status.log[0]).toMatchObject({ action: 'warning-expired', actor: 'system', alertId: 'TY-EXP-1' });
    // An Update replaces it in force: the line goes.
    const update = orange({ id: 'TY-EXP-2', sent: t, expires: t + 6 * HOUR }).replace('<msgType>Alert</msgType>', `<msgType>Update</msgType><references>zhuhai.weather@gd.cma.example,TY-EXP-1,${new Date(T0).toISOString()}</references>`);
    expect((await post(update)).statusCode).toBe(202);
    board = (await cloud.app.inject({ url: '/api/situation', headers: as('commander') })).json();
    expect(board.notices).toEqual([]);
  });

  it('a warning with two info blocks was reported expired when the deciding block expired while the other was still in force; it is in force until its last block expires', async () => {
    const iso = (ms: number) => new Date(ms).toISOString().replace(/\.\d+Z$/, '+00:00');
    const twoBlocks = (id: string, first: number, second: number) => fixture('two-info-blocks')
      .replace(/<identifier>[^<]+</, `<identifier>${id}<`).replace(/<sent>[^<]+</, `<sent>${iso(T0 - 2 * HOUR)}<`)
      .replace('FIRST_EXPIRES', iso(first)).replace('SECOND_EXPIRES', iso(second));
    // Refused at POST only when ALL info blocks have expired.
    const bothGone = await post(twoBlocks('TWO-OLD', T0 - HOUR, T0 - 30 * 60_000));
    expect(bothGone.statusCode).toBe(422);
    expect(bothGone.json()).toMatchObject({ code: 'CS_CAP_EXPIRED' });
    // The first (deciding) block expired, the second is in force for 6 h more: accepted, in force.
    expect((await post(twoBlocks('TWO-1', T0 - HOUR, T0 + 6 * HOUR))).statusCode).toBe(202);
    t = T0 + 1000;
    expect(await cloud.emergency!.checkExpiry()).toEqual([]);
    expect((await cloud.app.inject({ url: '/api/situation', headers: as('commander') })).json().notices).toEqual([]);
    t = T0 + 6 * HOUR + 1000;
    expect(await cloud.emergency!.checkExpiry()).toHaveLength(1);
    const board = (await cloud.app.inject({ url: '/api/situation', headers: as('commander') })).json();
    expect(board.notices).toEqual([expect.objectContaining({ kind: 'warning-expired', identifier: 'TWO-1', at: new Date(T0 + 6 * HOUR).toISOString() })]);
  });

  it('a CAP document nested 100 deep or holding a <__proto__> element answered 500; now 422 with a specific code', async () => {
    const base = fixture('orange-typhoon');
    const deep = base.replace('<scope>Public</scope>', `<scope>Public</scope>${'<n>'.repeat(100)}x${'</n>'.repeat(100)}`);
    const proto = base.replace('<scope>Public</scope>', '<scope>Public</scope><__proto__><polluted>yes</polluted></__proto__>');
    const ctor = base.replace('<scope>Public</scope>', '<scope>Public</scope><constructor>x</constructor>');
    for (const [xml, code] of [[deep, 'CS_CAP_TOO_DEEP'], [proto, 'CS_CAP_ELEMENT_NAME'], [ctor, 'CS_CAP_ELEMENT_NAME']] as const) {
      const r = await post(xml);
      expect(r.statusCode, code).toBe(422);
      expect(r.json()).toMatchObject({ statusCode: 422, code, error: 'Unprocessable Entity', message: expect.any(String) });
    }
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    expect((await cloud.app.inject({ url: '/api/emergency', headers: as('commander') })).json()).toMatchObject({ mode: 'normal' });
  });
});
