import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { topics } from '../../lib/topics.ts';
import { buildCloud, type Cloud, type CloudOptions } from '../../cloud/app.ts';
import type { CsEvent } from '../../cloud/events.ts';
import type { ModeProvider } from '../../cloud/mode.ts';
import { check } from '../../lib/schema.ts';
import { CloudServiceConfig } from '../../cli/config.ts';
import { BACKENDS, freshDatabase, profiles, reading, syntheticDistrict, type Backend } from './fixtures.ts';

/**
 * Sensor cases as the review and the probe found them wanting (issues 9 and 10): device health in
 * emergency mode, history that records changes rather than samples, roles, and limits with sense.
 */

const MIN = 60_000;
const HOUR = 60 * MIN;
// Wednesday 10:00 in Zhuhai.
const T0 = Date.parse('2026-11-25T02:00:00Z');
const district = syntheticDistrict(4, 1);
const GW = 'gw-t-0';
const WL = 'WL-T-0001';

interface CaseBody {
  id: string; state: string; class: string; severity: string; emergency: boolean; emergencyPeriod: number | null;
  deadline: string; breachCount: number; lastValue: unknown; extensionCount: number;
  history: { seq: number; action: string; note: string | null; reason: string | null }[];
  historyNextCursor?: string | null;
}

describe.each(BACKENDS)('cases on $backend', ({ backend, skip }: { backend: Backend; skip: boolean }) => {
  if (skip) console.warn(`cases on ${backend}: skipped, PostgreSQL is not reachable`);
  describe.skipIf(skip)(backend, () => {
    let clock: number;
    let seq: number;
    let events: CsEvent[];
    const open: Cloud[] = [];
    const drops: (() => Promise<void>)[] = [];

    async function newCloud(opts: Partial<CloudOptions> = {}): Promise<Cloud> {
      const fresh = await freshDatabase(backend);
      drops.push(fresh.drop);
      const c = await buildCloud({ db: fresh.db, district, profiles, now: () => clock, escalation: false, ...opts });
      open.push(c);
      await c.start();
      c.events.subscribe((e) => events.push(e));
      return c;
    }

    beforeEach(() => {
      clock = T0;
      seq = 0;
      events = [];
    });

    afterEach(async () => {
      for (const c of open.splice(0)) await c.stop();
      for (const drop of drops.splice(0)) await drop();
    });

    const send = (cloud: Cloud, values: Record<string, unknown>, device = WL) =>
      cloud.ingest(GW, topics.up(GW, device), reading(device, ++seq, clock, values));
    const get = async (cloud: Cloud, url: string, token: string) => cloud.app.inject({ url, headers: { authorization: `Bearer ${token}` } });

    async function caseOf(cloud: Cloud, r: unknown, token?: string): Promise<CaseBody> {
      const id = (r as { cases: { caseId: string }[] }).cases[0].caseId;
      const res = await get(cloud, `/api/cases/${id}`, token ?? await cloud.tokens.create('admin'));
      expect(res.statusCode, res.body).toBe(200);
      return res.json() as CaseBody;
    }

    const EMERGENCY: ModeProvider = { emergency: () => true, epoch: () => 7 };

    it('a low-battery case opened in emergency mode keeps its normal period and is not put in the emergency period', async () => {
      const cloud = await newCloud({ mode: EMERGENCY });
      const c = await caseOf(cloud, await send(cloud, { level_m: 0.1, battery_pct: 10 }));
      expect(c).toMatchObject({ class: 'device-health', emergency: false, emergencyPeriod: null });
      // Two working days from Wednesday 10:00, not the 12-hour cap.
      expect(Date.parse(c.deadline)).toBe(T0 + 48 * HOUR);
      // A hazard case opened at the same time is in the period.
      const flood = await caseOf(cloud, await send(cloud, { level_m: 0.99, battery_pct: 10 }));
      expect(flood).toMatchObject({ class: 'urgent', emergency: true, emergencyPeriod: 7 });
    });

    it('an offline case raised by the no-data check in emergency mode is not put in the emergency period', async () => {
      const rules = (await import('../../cloud/rules.ts')).defaultRuleSet(profiles);
      rules.devices[WL] = [{ id: 'no-data', afterPolls: 60 }];
      const cloud = await newCloud({ mode: EMERGENCY, rules, escalation: { tickMs: 3_600_000 } });
      await send(cloud, { level_m: 0.1, battery_pct: 90 });
      clock = T0 + 2 * HOUR;
      await cloud.escalator!.tick();
      const opened = events.find((e) => e.type === 'case.opened' && e.hazard === 'offline');
      expect(opened).toBeDefined();
      const res = await get(cloud, `/api/cases/${opened!.caseId}`, await cloud.tokens.create('admin'));
      expect(res.json()).toMatchObject({ class: 'device-health', emergency: false, emergencyPeriod: null });
    });

    it('a breach held for 100 samples writes a constant number of history rows and events, not one per sample', async () => {
      const cloud = await newCloud();
      const admin = await cloud.tokens.create('admin');
      const first = await send(cloud, { level_m: 0.9, battery_pct: 90 });
      // 100 more samples, 10 s apart (1,000 s): the same hazard, severity and deadline throughout.
      for (let i = 1; i <= 100; i++) {
        clock = T0 + i * 10_000;
        await send(cloud, { level_m: 0.9 + (i % 3) * 0.01, battery_pct: 90 });
      }
      let c = await caseOf(cloud, first, admin);
      expect(c).toMatchObject({ breachCount: 101, lastValue: 0.9 + (100 % 3) * 0.01, severity: 'major' });
      // register, dispatch, and one "still breaching" row after the 15-minute interval.
      expect(c.history.map((h) => h.action)).toEqual(['register', 'dispatch', 'still-breaching']);
      expect(events.filter((e) => e.type === 'case.updated')).toHaveLength(1);
      // A change is recorded at once: severity major -> critical.
      clock += 10_000;
      await send(cloud, { level_m: 0.97, battery_pct: 90 });
      c = await caseOf(cloud, first, admin);
      expect(c.history.map((h) => h.action)).toEqual(['register', 'dispatch', 'still-breaching', 'update']);
      expect(c.history[3].note).toMatch(/severity major -> critical/);
      expect(events.filter((e) => e.type === 'case.updated')).toHaveLength(2);
    });

    it('GET /api/cases/:id pages the history with limit and cursor instead of returning every row', async () => {
      const cloud = await newCloud({ workflow: { stillBreachingEveryMs: 60_000 } });
      const admin = await cloud.tokens.create('admin');
      const first = await send(cloud, { level_m: 0.9, battery_pct: 90 });
      for (let i = 1; i <= 5; i++) {
        clock = T0 + i * 61_000;
        await send(cloud, { level_m: 0.9, battery_pct: 90 });
      }
      const id = (first as { cases: { caseId: string }[] }).cases[0].caseId;
      const all = (await get(cloud, `/api/cases/${id}`, admin)).json() as CaseBody;
      expect(all.history.map((h) => h.action)).toEqual(['register', 'dispatch', ...Array(5).fill('still-breaching')]);
      expect(all.historyNextCursor).toBeNull();
      const p1 = (await get(cloud, `/api/cases/${id}?limit=3`, admin)).json() as CaseBody;
      expect(p1.history.map((h) => h.seq)).toEqual([1, 2, 3]);
      const p2 = (await get(cloud, `/api/cases/${id}?limit=3&cursor=${p1.historyNextCursor}`, admin)).json() as CaseBody;
      expect(p2.history.map((h) => h.seq)).toEqual([4, 5, 6]);
      const p3 = (await get(cloud, `/api/cases/${id}?limit=3&cursor=${p2.historyNextCursor}`, admin)).json() as CaseBody;
      expect(p3.history.map((h) => h.seq)).toEqual([7]);
      expect(p3.historyNextCursor).toBeNull();
      const bad = await get(cloud, `/api/cases/${id}?cursor=nonsense`, admin);
      expect(bad.statusCode).toBe(400);
      expect(bad.json().code).toBe('CS_CLOUD_BAD_CURSOR');
      expect((await get(cloud, `/api/cases/${id}?limit=0`, admin)).statusCode).toBe(400);
      const doc = (await cloud.app.inject({ url: '/docs/json' })).json() as { paths: Record<string, { get?: { parameters?: { name: string }[] } }> };
      expect(doc.paths['/api/cases/{id}'].get!.parameters!.map((p) => p.name)).toEqual(expect.arrayContaining(['limit', 'cursor']));
    });

    it('a crew sees only its own unit\'s open and overdue counts on /api/units, not every unit\'s', async () => {
      const cloud = await newCloud();
      await send(cloud, { level_m: 0.9, battery_pct: 10 });
      const asOperator = (await get(cloud, '/api/units', await cloud.tokens.create('operator'))).json().items as { id: string; openCases: number }[];
      expect(asOperator.find((u) => u.id === 'xz-drainage')?.openCases).toBe(1);
      expect(asOperator.find((u) => u.id === 'iot-ops')?.openCases).toBe(1);
      const asCrew = (await get(cloud, '/api/units', await cloud.tokens.create('crew', 'xz-drainage'))).json().items as { id: string; openCases: number }[];
      expect(asCrew).toMatchObject([{ id: 'xz-drainage', openCases: 1, overdueCases: 0 }]);
    });

    it('the maintainer unit\'s crew cannot acknowledge a hazard alarm of another unit (only the responsible unit\'s crew can)', async () => {
      const cloud = await newCloud();
      await send(cloud, { level_m: 0.9, battery_pct: 10 });
      const alarms = (await get(cloud, '/api/alarms', await cloud.tokens.create('operator'))).json().items as { id: string; hazard: string }[];
      const flood = alarms.find((a) => a.hazard === 'waterlogging')!;
      const battery = alarms.find((a) => a.hazard === 'low-battery')!;
      const drainage = await cloud.tokens.create('crew', 'xz-drainage');
      const maintainer = await cloud.tokens.create('crew', 'iot-ops');
      const ack = (id: string, token: string) => cloud.app.inject({ method: 'POST', url: `/api/alarms/${id}/ack`, headers: { authorization: `Bearer ${token}` } });
      const refused = await ack(flood.id, maintainer);
      expect(refused.statusCode).toBe(403);
      expect(refused.json()).toMatchObject({ code: 'CS_CLOUD_FORBIDDEN', message: expect.stringMatching(/xz-drainage/) });
      expect((await ack(battery.id, drainage)).statusCode).toBe(403);
      expect((await ack(flood.id, drainage)).json()).toMatchObject({ acknowledgedAt: expect.any(String) });
      expect((await ack(battery.id, maintainer)).json()).toMatchObject({ acknowledgedAt: expect.any(String) });
    });

    it('a commander cannot extend a deadline to 9999-12-31: an extension is bounded by configuration', async () => {
      const cloud = await newCloud({ workflow: { maxExtensionMs: 30 * 24 * HOUR } });
      const commander = await cloud.tokens.create('commander');
      // A routine tier-1 case: due in one working day, not under the 12-hour cap.
      const c = await caseOf(cloud, await send(cloud, { level_m: 0.75, battery_pct: 90 }), commander);
      const extend = (deadline: string) => cloud.app.inject({
        method: 'POST', url: `/api/cases/${c.id}/extend`, headers: { authorization: `Bearer ${commander}` }, payload: { reason: 'road works', deadline },
      });
      const far = await extend('9999-12-31T00:00:00Z');
      expect(far.statusCode).toBe(400);
      expect(far.json()).toMatchObject({ code: 'CS_CLOUD_CASE_BAD_ACTION', message: expect.stringMatching(/at most 30 days/) });
      const ok = await extend(new Date(Date.parse(c.deadline) + 29 * 24 * HOUR).toISOString());
      expect(ok.statusCode, ok.body).toBe(200);
      expect(ok.json()).toMatchObject({ extensionCount: 1 });
    });

    it('an extension never moves a case in the emergency period past its 12-hour cap', async () => {
      const cloud = await newCloud({ mode: EMERGENCY });
      const commander = await cloud.tokens.create('commander');
      const c = await caseOf(cloud, await send(cloud, { level_m: 0.75, battery_pct: 90 }), commander);
      expect(c).toMatchObject({ emergency: true, emergencyPeriod: 7 });
      expect(Date.parse(c.deadline)).toBeLessThanOrEqual(T0 + 12 * HOUR);
      const r = await cloud.app.inject({
        method: 'POST', url: `/api/cases/${c.id}/extend`, headers: { authorization: `Bearer ${commander}` },
        payload: { reason: 'crew delayed', deadline: new Date(T0 + 13 * HOUR).toISOString() },
      });
      expect(r.statusCode).toBe(400);
      expect(r.json().message).toMatch(/12-hour cap/);
    });

    it('voiding a case while its sensor still breaches does not open a new case a second later; it suppresses one for the configured time', async () => {
      const cloud = await newCloud({ workflow: { voidSuppressMs: HOUR } });
      const operator = await cloud.tokens.create('operator');
      const c = await caseOf(cloud, await send(cloud, { level_m: 0.9, battery_pct: 90 }), operator);
      const post = (body: Record<string, unknown>) => cloud.app.inject({ method: 'POST', url: `/api/cases/${c.id}/void`, headers: { authorization: `Bearer ${operator}` }, payload: body });
      const noReason = await post({});
      expect(noReason.statusCode).toBe(400);
      const voided = await post({ reason: 'sensor fouled by debris, level is fine on site' });
      expect(voided.statusCode, voided.body).toBe(200);
      expect(voided.json().history.at(-1)).toMatchObject({ action: 'void', details: { suppressNewCaseUntil: new Date(T0 + HOUR).toISOString() } });
      clock = T0 + 1000;
      const again = await send(cloud, { level_m: 0.9, battery_pct: 90 });
      expect(again).toMatchObject({ status: 'stored', cases: [] });
      clock = T0 + 59 * MIN;
      expect(await send(cloud, { level_m: 0.97, battery_pct: 90 })).toMatchObject({ status: 'stored', cases: [] });
      // The suppression ends: the breach still going on opens a new case.
      clock = T0 + HOUR + 1000;
      const later = await send(cloud, { level_m: 0.97, battery_pct: 90 });
      expect(later).toMatchObject({ status: 'stored', cases: [{ action: 'opened' }] });
    });

    it('voiding a case whose sensor is back in range suppresses nothing: the next breach opens a case', async () => {
      const cloud = await newCloud({ workflow: { voidSuppressMs: HOUR } });
      const operator = await cloud.tokens.create('operator');
      const c = await caseOf(cloud, await send(cloud, { level_m: 0.9, battery_pct: 90 }), operator);
      clock = T0 + MIN;
      await send(cloud, { level_m: 0.1, battery_pct: 90 });
      const voided = await cloud.app.inject({ method: 'POST', url: `/api/cases/${c.id}/void`, headers: { authorization: `Bearer ${operator}` }, payload: { reason: 'test' } });
      expect(voided.statusCode).toBe(200);
      clock = T0 + 2 * MIN;
      expect(await send(cloud, { level_m: 0.9, battery_pct: 90 })).toMatchObject({ status: 'stored', cases: [{ action: 'opened' }] });
    });
  });
});

describe('the workflow settings in the cloud\'s config file', () => {
  const base = { district: 'district.yaml', mqtt: { url: 'mqtt://127.0.0.1:1883', username: 'cloud', password: 'x' } };
  it('takes the history interval and the limits on extensions and voids', () => {
    const r = check(CloudServiceConfig, { ...base, workflow: { stillBreachingEveryMs: 600_000, maxExtensionMs: 7 * 24 * HOUR, voidSuppressMs: 0 } });
    expect(r.ok && r.value.workflow).toEqual({ stillBreachingEveryMs: 600_000, maxExtensionMs: 7 * 24 * HOUR, voidSuppressMs: 0 });
  });
  it('refuses an extension limit past a year and an unknown key, naming them', () => {
    const far = check(CloudServiceConfig, { ...base, workflow: { maxExtensionMs: 1e15 } });
    expect(far.ok ? [] : far.problems.map((p) => p.key)).toEqual(['workflow.maxExtensionMs']);
    const typo = check(CloudServiceConfig, { ...base, workflow: { maxExtentionMs: 1 } });
    expect(typo.ok ? [] : typo.problems.map((p) => `${p.key} ${p.message}`).join('; ')).toMatch(/maxExtentionMs/);
  });
});
