import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { topics } from '../../lib/topics.ts';
import { buildCloud, type Cloud } from '../../cloud/app.ts';
import { defaultRuleSet } from '../../cloud/rules.ts';
import { createModeProvider } from '../../cloud/mode.ts';
import type { CsEvent } from '../../cloud/events.ts';
import { BACKENDS, freshDatabase, profiles, reading, syntheticDistrict, type Backend } from './fixtures.ts';

/**
 * The case clock under fake timers (setInterval and Date only: database drivers keep their real
 * timeouts): reminders before the deadline, the escalation ladder for unaccepted and overdue
 * cases, and the no-data rule, on SQLite and PostgreSQL.
 */

const MIN = 60_000;
const HOUR = 60 * MIN;
// Wednesday 10:00 in Zhuhai.
const T0 = Date.parse('2026-11-25T02:00:00Z');
const district = syntheticDistrict(4, 1);
const GW = 'gw-t-0';

// Silence rules effectively off, except for WL-T-0004 (one minute of silence: 60 polls of 1 s).
const rules = defaultRuleSet(profiles);
for (const kind of Object.values(rules.kinds)) for (const r of kind) if (r.kind === 'silence') r.afterPolls = 1e9;
rules.devices['WL-T-0004'] = [{ id: 'no-data', afterPolls: 60 }];

describe.each(BACKENDS)('case clock on $backend', ({ backend, skip }: { backend: Backend; skip: boolean }) => {
  if (skip) console.warn(`case clock on ${backend}: skipped, PostgreSQL is not reachable`);
  describe.skipIf(skip)(backend, () => {
    let cloud: Cloud;
    let drop: () => Promise<void>;
    let events: CsEvent[];
    let seq = 0;
    const mode = createModeProvider(false);

    beforeEach(async () => {
      vi.useFakeTimers({ toFake: ['setInterval', 'clearInterval', 'Date'], now: T0 });
      const fresh = await freshDatabase(backend);
      drop = fresh.drop;
      cloud = await buildCloud({
        db: fresh.db, district, profiles, rules, mode,
        // One worker: no other's configuration or registry changes to re-read (every 2 s by default, that
        // would be 60 reads per simulated minute; the clock's passes are what is tested).
        configSyncMs: 24 * HOUR, registry: { pollMs: 0 },
        escalation: { tickMs: MIN, remindBeforeMs: HOUR, ackWithinMs: 15 * MIN, stepMs: 30 * MIN },
        routing: { rules: [], units: { 'xz-drainage': { members: ['Li Wei'], dutyLeader: 'Chen Jing +86 756 000 0399' } }, commandCentre: 'Zhuhai command centre' },
      });
      await cloud.start();
      events = [];
      cloud.events.subscribe((e) => events.push(e));
    });

    afterEach(async () => {
      await cloud?.stop();
      mode.set(false);
      vi.useRealTimers();
      await drop?.();
    });

    /** Moves the clock a tick at a time, letting each pass of the case clock finish. */
    async function advance(ms: number): Promise<void> {
      for (let left = ms; left > 0; left -= MIN) {
        await vi.advanceTimersByTimeAsync(Math.min(MIN, left));
        await cloud.escalator!.tick();
      }
    }

    const breach = async (device: string) => {
      const r = await cloud.ingest(GW, topics.up(GW, device), reading(device, ++seq, Date.now(), { level_m: 0.9 }));
      return (r as { cases: { caseId: string }[] }).cases[0].caseId;
    };
    const of = (caseId: string, type: string) => events.filter((e) => e.caseId === caseId && e.type === type);

    it('climbs the ladder for a case nobody accepts: the duty leader after 15 minutes, the command centre 30 minutes later', async () => {
      const id = await breach('WL-T-0001');
      await advance(14 * MIN);
      expect(of(id, 'case.escalated')).toEqual([]);
      await advance(1 * MIN);
      expect(of(id, 'case.escalated')).toMatchObject([{ data: { level: 1, rung: 'duty-leader', contact: 'Chen Jing +86 756 000 0399', reason: 'not accepted within 15 min' } }]);
      await advance(29 * MIN);
      expect(of(id, 'case.escalated')).toHaveLength(1);
      await advance(1 * MIN);
      expect(of(id, 'case.escalated').map((e) => e.data?.rung)).toEqual(['duty-leader', 'command-centre']);
      expect(of(id, 'case.escalated')[1].data?.contact).toBe('Zhuhai command centre');
      await advance(60 * MIN);
      expect(of(id, 'case.escalated')).toHaveLength(2);
      const detail = (await cloud.app.inject({ url: `/api/cases/${id}`, headers: { authorization: `Bearer ${await cloud.tokens.create('operator')}` } })).json();
      expect(detail.escalationLevel).toBe(2);
      expect(detail.history.filter((h: { action: string }) => h.action === 'escalate')).toHaveLength(2);
    });

    it('reminds once an hour before the deadline and escalates an accepted case only once it is overdue', async () => {
      const id = await breach('WL-T-0002');
      const crew = await cloud.tokens.create('crew', 'xz-drainage');
      expect((await cloud.app.inject({ method: 'POST', url: `/api/cases/${id}/accept`, headers: { authorization: `Bearer ${crew}` } })).statusCode).toBe(200);
      // Due 6 hours after registration (waterlogging, continuous hours).
      await advance(5 * HOUR - MIN);
      expect(of(id, 'case.reminder')).toEqual([]);
      expect(of(id, 'case.escalated')).toEqual([]);
      await advance(MIN);
      expect(of(id, 'case.reminder')).toMatchObject([{ unit: 'xz-drainage', data: { deadline: new Date(T0 + 6 * HOUR).toISOString() } }]);
      await advance(HOUR - MIN);
      expect(of(id, 'case.escalated')).toEqual([]);
      await advance(MIN);
      expect(of(id, 'case.escalated')).toMatchObject([{ data: { level: 1, rung: 'duty-leader', reason: expect.stringMatching(/^overdue since/) } }]);
      expect(of(id, 'case.reminder')).toHaveLength(1);
      await advance(30 * MIN);
      expect(of(id, 'case.escalated').map((e) => e.data?.level)).toEqual([1, 2]);
    });

    it('reminds a short case a quarter of its time before the deadline', async () => {
      const mh = 'XZ-MH-001';
      const r = await cloud.ingest('gw-xz-gongbei', topics.up('gw-xz-gongbei', mh), reading(mh, ++seq, Date.now(), { gas_h2s_ppm: 30 }));
      const id = (r as { cases: { caseId: string }[] }).cases[0].caseId;
      // Gas: 2 hours; reminded 30 minutes before.
      await advance(89 * MIN);
      expect(of(id, 'case.reminder')).toEqual([]);
      await advance(MIN);
      expect(of(id, 'case.reminder')).toHaveLength(1);
    });

    it('opens an offline case for the maintainer when a sensor falls silent past its expected interval, and clears the alarm when it reports', async () => {
      await cloud.ingest(GW, topics.up(GW, 'WL-T-0004'), reading('WL-T-0004', ++seq, Date.now(), { level_m: 0.1 }));
      await advance(MIN);
      expect(events.filter((e) => e.type === 'alarm.raised')).toEqual([]);
      await advance(MIN);
      const raised = events.filter((e) => e.type === 'alarm.raised');
      expect(raised).toMatchObject([{ device: 'WL-T-0004', hazard: 'offline' }]);
      const opened = events.filter((e) => e.type === 'case.opened');
      expect(opened).toMatchObject([{ device: 'WL-T-0004', hazard: 'offline', unit: 'iot-ops' }]);
      await advance(5 * MIN);
      expect(events.filter((e) => e.type === 'alarm.raised')).toHaveLength(1);
      await cloud.ingest(GW, topics.up(GW, 'WL-T-0004'), reading('WL-T-0004', ++seq, Date.now(), { level_m: 0.1 }));
      await advance(MIN);
      expect(events.filter((e) => e.type === 'alarm.cleared')).toMatchObject([{ device: 'WL-T-0004', hazard: 'offline', caseId: opened[0].caseId }]);
    });

    it('dates a routine case registered on a Friday afternoon after the weekend, but 12 hours ahead in emergency mode', async () => {
      const friday = Date.parse('2026-11-27T16:00:00+08:00');
      vi.setSystemTime(friday);
      const op = await cloud.tokens.create('operator');
      const routine = async (device: string, level: number) => {
        const r = await cloud.ingest(GW, topics.up(GW, device), reading(device, ++seq, Date.now(), { level_m: level }));
        const id = (r as { cases: { caseId: string }[] }).cases[0].caseId;
        return (await cloud.app.inject({ url: `/api/cases/${id}`, headers: { authorization: `Bearer ${op}` } })).json();
      };
      const normal = await routine('WL-T-0001', 0.78);
      expect(normal).toMatchObject({ class: 'routine', emergency: false, deadline: new Date(Date.parse('2026-11-30T16:00:00+08:00')).toISOString() });
      mode.set(true);
      await advance(MIN);
      // Emergency tiers are lower (0.6 / 0.75 / 0.9): 0.65 is a routine tier-1 breach only in emergency mode.
      const storm = await routine('WL-T-0002', 0.65);
      expect(storm).toMatchObject({ class: 'routine', emergency: true, deadline: new Date(friday + MIN + 12 * HOUR).toISOString() });
      // The crew takes it; the overnight emergency case is reminded an hour before and escalated when overdue, at night.
      const crew = await cloud.tokens.create('crew', 'xz-drainage');
      expect((await cloud.app.inject({ method: 'POST', url: `/api/cases/${storm.id}/accept`, headers: { authorization: `Bearer ${crew}` } })).statusCode).toBe(200);
      await advance(11 * HOUR - MIN);
      expect(of(storm.id, 'case.reminder')).toHaveLength(0);
      await advance(MIN);
      expect(of(storm.id, 'case.reminder')).toHaveLength(1);
      await advance(HOUR);
      expect(of(storm.id, 'case.escalated').map((e) => e.data?.reason)).toEqual(['overdue since 2026-11-27T20:01:00.000Z']);
    });
  });
});
