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
  });
});
