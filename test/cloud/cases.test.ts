import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { topics } from '../../lib/topics.ts';
import { buildCloud, type Cloud, type CloudOptions } from '../../cloud/app.ts';
import type { CsEvent } from '../../cloud/events.ts';
import type { ModeProvider } from '../../cloud/mode.ts';
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
  });
});
