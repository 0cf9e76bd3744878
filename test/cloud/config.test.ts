import { readFileSync } from 'node:fs';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { topics } from '../../lib/topics.ts';
import type { Cloud } from '../../cloud/app.ts';
import type { CsEvent } from '../../cloud/events.ts';
import { BACKENDS, profiles, reading, type Backend } from './fixtures.ts';
import { configApi, configDistrict, GW, HOUR, MIN, ORANGE, T0, startCloud, type StartedCloud } from './harness.ts';

/**
 * Configuration as data (README "Configuration as data"), on SQLite and PostgreSQL: each kind changed
 * through the API takes effect on the next reading or case without a restart; a bad change is
 * refused whole with every key and problem, nothing applied; the audit lists both.
 */

const district = configDistrict;

describe.each(BACKENDS)('configuration as data on $backend', ({ backend, skip }: { backend: Backend; skip: boolean }) => {
  if (skip) console.warn(`configuration on ${backend}: skipped, PostgreSQL is not reachable`);
  describe.skipIf(skip)(backend, () => {
    let h: StartedCloud;
    let cloud: Cloud;
    let t = T0;
    let seq = 0;
    let admin: string;
    let operator: string;
    let events: CsEvent[];

    beforeEach(async () => {
      t = T0;
      // The case clock's timer is slow: the tests run its passes themselves at the injected time.
      h = await startCloud(backend, { district, profiles, now: () => t, escalation: { tickMs: HOUR } });
      ({ cloud, admin, operator, events } = h);
    });

    afterEach(async () => {
      await h?.stop();
    });

    const { get, put } = configApi(() => h);
    const send = async (device: string, level: number) => {
      const r = await cloud.ingest(GW, topics.up(GW, device), reading(device, ++seq, t, { level_m: level }));
      return r as { status: string; cases: { caseId: string }[] };
    };
    const caseOf = async (id: string) => (await cloud.app.inject({ url: `/api/cases/${id}`, headers: { authorization: `Bearer ${operator}` } })).json();
    const changes = async (kind?: string) => (await cloud.app.inject({ url: `/api/config/changes${kind ? `?kind=${kind}` : ''}`, headers: { authorization: `Bearer ${admin}` } })).json().items as any[];

    it('lists every kind seeded from the config file at version 1', async () => {
      const r = (await cloud.app.inject({ url: '/api/config', headers: { authorization: `Bearer ${operator}` } })).json();
      expect(r.kinds.map((k: { kind: string; version: number; updatedBy: string }) => [k.kind, k.version, k.updatedBy])).toEqual(
        ['rules', 'catalogue', 'routing', 'calendar', 'escalation', 'emergency'].map((k) => [k, 1, 'config-file']));
      // Each kind's seeding is in the audit (an empty audit would pass an `every` alone).
      expect((await changes()).map((c) => [c.kind, c.source, c.outcome, c.actor, c.summary]).sort()).toEqual(
        ['calendar', 'catalogue', 'emergency', 'escalation', 'routing', 'rules'].map((k) => [k, 'file', 'applied', 'config-file', 'seeded from the config file']));
    });

    it('rules: a lowered threshold makes the next reading a breach', async () => {
      expect((await send('WL-T-0001', 0.6)).cases).toEqual([]);
      const { version, document } = await get('rules');
      const tier1 = document.kinds['water-level'].find((r: { id: string }) => r.id === 'level-tier1');
      tier1.value = 0.5;
      const r = await put('rules', document, version);
      expect(r.statusCode).toBe(200);
      expect(r.json()).toMatchObject({ kind: 'rules', version: version + 1, changed: true });
      expect(r.json().summary).toContain('0.7 → 0.5');
      t += 1000;
      expect((await send('WL-T-0001', 0.6)).cases).toHaveLength(1);
    });

    it('rules: a per-device override judges that device\'s next reading, and a changed emergency limit the next one in emergency mode', async () => {
      const { version, document } = await get('rules');
      document.devices = { ...document.devices, 'WL-T-0001': [{ id: 'level-tier1', value: 0.5 }] };
      expect((await put('rules', document, version)).statusCode).toBe(200);
      expect((await send('WL-T-0001', 0.6)).cases).toHaveLength(1);
      expect((await send('WL-T-0002', 0.6)).cases).toEqual([]);
      expect((await cloud.emergency!.receiveWarning(ORANGE, 'test')).state.mode).toBe('emergency');
      t += 1000;
      expect((await send('WL-T-0003', 0.58)).cases).toEqual([]); // under the emergency limit 0.6
      document.kinds['water-level'].find((r: { id: string }) => r.id === 'level-tier1').emergencyValue = 0.55;
      expect((await put('rules', document, version + 1)).statusCode).toBe(200);
      t += 1000;
      expect((await send('WL-T-0004', 0.58)).cases).toHaveLength(1);
    });

    it('a bad change is refused whole with each key and problem, nothing applied; the audit lists both', async () => {
      const { version, document } = await get('rules');
      const rules = document.kinds['water-level'];
      rules.find((r: { id: string }) => r.id === 'level-tier1').value = 0.5; // good
      const i = rules.findIndex((r: { id: string }) => r.id === 'level-tier2');
      rules[i].point = 'no_such_point'; // bad
      const refused = await put('rules', document, version);
      expect(refused.statusCode).toBe(400);
      expect(refused.json()).toMatchObject({ code: 'CS_CLOUD_CONFIG_REFUSED', problems: [{ key: `kinds.water-level[${i}].point`, message: 'profile "water-level" has no point "no_such_point"' }] });
      expect((await get('rules')).version).toBe(version);
      expect((await send('WL-T-0002', 0.6)).cases).toEqual([]); // the good half was not applied either

      rules[i].point = 'level_m';
      expect((await put('rules', document, version)).statusCode).toBe(200);
      const log = await changes('rules');
      expect(log[0]).toMatchObject({ outcome: 'applied', source: 'api', actor: expect.stringMatching(/^token:/), version: version + 1 });
      expect(log[0].before.kinds['water-level'].find((r: { id: string }) => r.id === 'level-tier1').value).toBe(0.7);
      expect(log[0].after.kinds['water-level'].find((r: { id: string }) => r.id === 'level-tier1').value).toBe(0.5);
      expect(log[1]).toMatchObject({ outcome: 'refused', version: null, problems: [{ key: `kinds.water-level[${i}].point` }] });
      expect(log[1].actor).toBe(log[0].actor);
    });

    // Guards against rule sets that pass the schema but misjudge every reading: two rules of one id in a kind
    // (their hold and alarm state and the devices' overrides are keyed by id, so shared) and a range whose
    // min is above its max (every value implausible, a device-health case per device), directly or by an override.
    it('rules: a repeated rule id in a kind and a range with min above max are refused, nothing applied', async () => {
      const { version, document } = await get('rules');
      const rules = document.kinds['water-level'];
      const n = rules.length;
      const range = rules.findIndex((r: { kind: string }) => r.kind === 'range');
      rules.push({ ...rules.find((r: { id: string }) => r.id === 'level-tier1'), value: 0.5 });
      rules[range] = { ...rules[range], min: 20, max: 10 };
      document.devices = { 'WL-T-0001': [{ id: rules[range].id, min: 30 }] };
      const refused = await put('rules', document, version);
      expect(refused.statusCode).toBe(400);
      expect(refused.json().problems.map((p: { key: string }) => p.key).sort()).toEqual([`devices.WL-T-0001[0].min`, `kinds.water-level[${n}].id`, `kinds.water-level[${range}].min`].sort());
      expect((await send('WL-T-0002', 0.6)).cases).toEqual([]);
    });

    it('a change based on a stale version is refused (409), and only an admin may change', async () => {
      const { version, document } = await get('routing');
      expect((await put('routing', document, version, operator)).statusCode).toBe(403);
      document.commandCentre = 'Zhuhai command centre';
      expect((await put('routing', document, version)).statusCode).toBe(200);
      document.commandCentre = 'elsewhere';
      const stale = await put('routing', document, version);
      expect(stale.statusCode).toBe(409);
      expect(stale.json()).toMatchObject({ code: 'CS_CLOUD_CONFIG_STALE', problems: [{ key: 'baseVersion' }] });
      expect((await get('routing')).document.commandCentre).toBe('Zhuhai command centre');
    });

    it('catalogue: a category\'s new time limit sets the next case\'s deadline', async () => {
      const before = (await send('WL-T-0003', 0.75)).cases[0].caseId;
      expect(Date.parse((await caseOf(before)).deadline)).toBe(T0 + 24 * HOUR); // one working day: Thursday 10:00
      const { version, document } = await get('catalogue');
      document.categories.find((c: { code: string }) => c.code === 'E0506').limitByClass.routine = { amount: 3, unit: 'hours' };
      expect((await put('catalogue', document, version)).statusCode).toBe(200);
      const after = (await send('WL-T-0004', 0.75)).cases[0].caseId;
      expect(Date.parse((await caseOf(after)).deadline)).toBe(T0 + 3 * HOUR);
    });

    it('catalogue: a category added is offered to citizens (Open311) and to inspectors at once', async () => {
      const { version, document } = await get('catalogue');
      const road = document.categories.find((c: { code: string }) => c.code === 'E0506');
      document.categories.push({ ...road, code: 'E0599', minor: '99', name: { zh: '测试类别', en: 'Test category' }, hazards: undefined });
      delete document.categories[document.categories.length - 1].hazards;
      expect((await put('catalogue', document, version)).statusCode).toBe(200);
      const services = (await cloud.app.inject({ url: '/open311/v2/services.json' })).json() as { service_code: string }[];
      expect(services.map((x) => x.service_code)).toContain('E0599');
      const cat = (await cloud.app.inject({ url: '/api/catalogue', headers: { authorization: `Bearer ${operator}` } })).json();
      expect(JSON.stringify(cat)).toContain('E0599');
    });

    // Guards against two milestones of one name in a category: milestones are reached by name, so the second
    // could never be reached and every case of the category would show it overdue.
    it('catalogue: a milestone added sets the next case\'s sub-deadline; two of one name are refused', async () => {
      const { version, document } = await get('catalogue');
      const road = document.categories.findIndex((c: { code: string }) => c.code === 'E0506');
      document.categories[road].milestones = [{ name: 'on-site', limit: { amount: 20, unit: 'minutes' } }, { name: 'on-site', limit: { amount: 40, unit: 'minutes' } }];
      const bad = await put('catalogue', document, version);
      expect(bad.statusCode).toBe(400);
      expect(bad.json().problems).toEqual([{ key: `categories[${road}].milestones[1].name`, message: expect.stringContaining('a second milestone "on-site"') }]);
      document.categories[road].milestones[1].name = 'repaired';
      expect((await put('catalogue', document, version)).statusCode).toBe(200);
      const id = (await send('WL-T-0003', 0.9)).cases[0].caseId; // urgent: milestones apply
      expect((await caseOf(id)).milestones.map((m: { name: string; due: string }) => [m.name, Date.parse(m.due)])).toEqual([['on-site', T0 + 20 * MIN], ['repaired', T0 + 40 * MIN]]);
    });

    // Guards against a time limit past what the calendar can place (here about 19 years of working days):
    // accepted, it made every case of the category fail to be created.
    it('catalogue: a time limit of more than a year is refused, and the next case is still created', async () => {
      const { version, document } = await get('catalogue');
      const road = document.categories.findIndex((c: { code: string }) => c.code === 'E0506');
      document.categories[road].limitByClass.routine = { amount: 5000, unit: 'workDays' };
      const bad = await put('catalogue', document, version);
      expect(bad.statusCode).toBe(400);
      expect(bad.json().problems).toEqual([{ key: `categories[${road}].limitByClass.routine.amount`, message: '5000 workDays is more than a year (at most 260 workDays)' }]);
      expect((await send('WL-T-0003', 0.75)).cases).toHaveLength(1);
    });

    it('routing: a routing rule sends the next case to another unit', async () => {
      const first = (await send('WL-T-0005', 0.9)).cases[0].caseId;
      expect((await caseOf(first)).unit).toBe('xz-drainage');
      const { version, document } = await get('routing');
      document.rules = [{ hazard: 'waterlogging', unit: 'xz-municipal' }];
      expect((await put('routing', document, version)).statusCode).toBe(200);
      const next = (await send('WL-T-0006', 0.9)).cases[0].caseId;
      expect((await caseOf(next)).unit).toBe('xz-municipal');
    });

    it('calendar: a day the city takes off moves a working-day deadline', async () => {
      const { version, document } = await get('calendar');
      document.holidays = [...document.holidays, '2026-11-26'];
      expect((await put('calendar', document, version)).statusCode).toBe(200);
      const id = (await send('WL-T-0007', 0.75)).cases[0].caseId;
      expect(Date.parse((await caseOf(id)).deadline)).toBe(T0 + 48 * HOUR); // Friday 10:00
      const bad = await put('calendar', { ...document, workingHours: [['14:00', '12:00']] });
      expect(bad.statusCode).toBe(400);
      expect(bad.json().problems).toEqual([{ key: 'workingHours[0]', message: 'ends (12:00) before it starts (14:00)' }]);
    });

    // Guards against a calendar with every weekday off but a few listed workdays being accepted: once those
    // days had passed, every working-hours deadline threw and the next reading's case was never created.
    it('calendar: a week with no working day is refused, whatever workdays it lists; repeated weekend days are not', async () => {
      const { version, document } = await get('calendar');
      const bad = await put('calendar', { ...document, weekend: [0, 1, 2, 3, 4, 5, 6], workdays: ['2020-01-06'] }, version);
      expect(bad.statusCode).toBe(400);
      expect(bad.json().problems).toEqual([{ key: 'weekend', message: expect.stringContaining('every day of the week is off') }]);
      expect((await send('WL-T-0007', 0.75)).cases).toHaveLength(1);
      expect((await put('calendar', { ...document, weekend: [0, 6, 0, 6, 0, 6, 0] }, version)).statusCode).toBe(200);
    });

    // Guards against the evaluation routes keeping the UTC offset they were registered with: a changed
    // calendar offset silently left the monthly report's period on the old one.
    it('calendar: a new UTC offset sets the evaluation report\'s month at once', async () => {
      const report = async () => (await cloud.app.inject({ url: '/api/evaluation?month=2026-11', headers: { authorization: `Bearer ${operator}` } })).json();
      expect((await report()).period).toMatchObject({ from: '2026-10-31T16:00:00.000Z', utcOffsetMinutes: 480 });
      const { version, document } = await get('calendar');
      expect((await put('calendar', { ...document, utcOffsetMinutes: 0 }, version)).statusCode).toBe(200);
      expect((await report()).period).toMatchObject({ from: '2026-11-01T00:00:00.000Z', utcOffsetMinutes: 0 });
    });

    it('escalation: a shorter acceptance time escalates the next pass sooner', async () => {
      const id = (await send('WL-T-0008', 0.9)).cases[0].caseId;
      t = T0 + 6 * MIN;
      await cloud.escalator!.tick();
      expect(events.filter((e) => e.caseId === id && e.type === 'case.escalated')).toEqual([]);
      const { version, document } = await get('escalation');
      expect(document).toMatchObject({ ackWithinMs: 15 * MIN, tickMs: HOUR });
      expect((await put('escalation', { ...document, ackWithinMs: 5 * MIN }, version)).statusCode).toBe(200);
      await cloud.escalator!.tick();
      expect(events.filter((e) => e.caseId === id && e.type === 'case.escalated')).toMatchObject([{ data: { level: 1, reason: 'not accepted within 5 min' } }]);
    });

    it('emergency: a signal colour mapped to no level leaves the mode; mapped, it switches with the new fast poll interval', async () => {
      const { version, document } = await get('emergency');
      expect(document.signals ?? document.policy.signals).toMatchObject({ orange: 'II' });
      document.policy.signals.orange = null;
      document.fast = { pollMs: 500 };
      expect((await put('emergency', document, version)).statusCode).toBe(200);
      const ignored = await cloud.emergency!.receiveWarning(ORANGE, 'test');
      expect(ignored.decision.action).toBe('ignore');
      expect(ignored.state.mode).toBe('normal');
      document.policy.signals.orange = 'II';
      expect((await put('emergency', document, version + 1)).statusCode).toBe(200);
      const entered = await cloud.emergency!.receiveWarning(ORANGE.replace('TY-0917-001', 'TY-0917-009'), 'test');
      expect(entered.state).toMatchObject({ mode: 'emergency', level: 'II' });
      expect(cloud.emergency!.fanout.status().command).toMatchObject({ mode: 'fast', pollMs: 500 });
      const bad = await put('emergency', { ...document, retryMs: 5, policy: { ...document.policy, signals: { ...document.policy.signals, red: 'V' } } });
      expect(bad.statusCode).toBe(400);
      expect(bad.json().problems.map((p: { key: string }) => p.key).sort()).toEqual(['policy.signals.red', 'retryMs']);
    });

    // Guards against an empty event name or area name being accepted: as a substring it matches every
    // warning, so another city's typhoon signal (Shantou) put Zhuhai into emergency mode.
    it('emergency: an empty event or area name is refused, and another city\'s warning still leaves the mode alone', async () => {
      const { version, document } = await get('emergency');
      const names = document.policy.areas.names.length;
      const bad = await put('emergency', { ...document, policy: { ...document.policy, events: [...document.policy.events, ''], areas: { ...document.policy.areas, names: [...document.policy.areas.names, ''] } } }, version);
      expect(bad.statusCode).toBe(400);
      expect(bad.json().problems.map((p: { key: string }) => p.key).sort()).toEqual([`policy.areas.names[${names}]`, `policy.events[${document.policy.events.length}]`]);
      const other = await cloud.emergency!.receiveWarning(readFileSync(new URL('../fixtures/cap/other-city.xml', import.meta.url), 'utf8'), 'test');
      expect(other.state.mode).toBe('normal');
    });
  });
});
