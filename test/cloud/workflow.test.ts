import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { topics } from '../../lib/topics.ts';
import { buildCloud, type Cloud } from '../../cloud/app.ts';
import { CASE_ACTIONS, CASE_STATES, TRANSITIONS, ACTION_ROLES, type CaseAction, type CaseState } from '../../cloud/workflow.ts';
import { DummyDriver, Kysely, SqliteAdapter, SqliteIntrospector, SqliteQueryCompiler } from 'kysely';
import { OPEN_CASE_PREDICATE } from '../../cloud/db/migrations.ts';
import { FINAL_STATES, isFinal } from '../../lib/vocabulary.ts';
import { BACKENDS, freshDatabase, profiles, reading, syntheticDistrict, type Backend } from './fixtures.ts';

/**
 * The case workflow over HTTP, on SQLite and on PostgreSQL alike: every legal transition, every
 * illegal one refused with its message, the history, sensor-verified closure, recurrence as
 * rework, merged hazards, routing, and the roles.
 */

const HOUR = 3_600_000;
const MIN = 60_000;
const T0 = Date.parse('2026-11-25T02:00:00Z');
const DEVICES = 120;
const district = syntheticDistrict(DEVICES, 1);
const GW = 'gw-t-0';

interface CaseJson { id: string; state: CaseState; unit: string; hazards: string[]; deadline: string; reworkCount: number; extensionCount: number; history: { action: string; role: string; actor: string; reason: string | null; note: string | null; evidence: string[]; fromState: string | null; toState: string | null; details: Record<string, unknown> | null }[]; alarms: { id: string; active: boolean; caseId: string }[]; readings: unknown[]; allowedActions: string[]; milestones: { name: string; due: string }[]; class: string; emergency: boolean }

const ROLE_FOR: Record<CaseAction, 'operator' | 'crew' | 'verifier' | 'commander'> = {
  dispatch: 'operator', accept: 'crew', handle: 'crew', verify: 'verifier', rework: 'verifier',
  extend: 'commander', defer: 'commander', void: 'operator', reopen: 'operator',
  note: 'verifier', 'on-site': 'crew', 'made-safe': 'crew', 'request-extension': 'crew', 'refuse-extension': 'commander',
};

describe.each(BACKENDS)('case workflow on $backend', ({ backend, skip }: { backend: Backend; skip: boolean }) => {
  if (skip) console.warn(`case workflow on ${backend}: skipped, PostgreSQL is not reachable`);
  describe.skipIf(skip)(backend, () => {
    let cloud: Cloud;
    /** A second worker on the same database that leaves sensor cases registered (no auto-dispatch). */
    let manual: Cloud;
    let drop: () => Promise<void>;
    let clock = T0;
    let seq = 0;
    let next = 0;
    const tok: Record<string, string> = {};

    beforeAll(async () => {
      const fresh = await freshDatabase(backend);
      drop = fresh.drop;
      cloud = await buildCloud({
        db: fresh.db, district, profiles, now: () => clock, escalation: false,
        workflow: { verifyClearMs: 10 * MIN, reopenWithinMs: 24 * HOUR },
      });
      await cloud.start();
      manual = await buildCloud({ db: fresh.db, district, profiles, now: () => clock, escalation: false, workflow: { autoDispatch: false } });
      await manual.start();
      for (const r of ['operator', 'commander', 'verifier', 'admin'] as const) tok[r] = await cloud.tokens.create(r);
      tok.crew = await cloud.tokens.create('crew', 'xz-drainage');
      tok.otherCrew = await cloud.tokens.create('crew', 'zh-gas');
    });

    afterAll(async () => {
      await manual?.stop();
      await cloud?.stop();
      await drop?.();
    });

    const send = (device: string, values: Record<string, unknown>, gw = GW, via = cloud) =>
      via.ingest(gw, topics.up(gw, device), reading(device, ++seq, clock, values));

    const post = (id: string, action: string, token: string, body: Record<string, unknown> = {}) =>
      cloud.app.inject({ method: 'POST', url: `/api/cases/${id}/${action}`, headers: { authorization: `Bearer ${token}` }, payload: body });
    const get = (url: string, token: string) => cloud.app.inject({ url, headers: { authorization: `Bearer ${token}` } });

    const bodyFor = (action: CaseAction, c: { deadline: string }) => ({
      reason: `test ${action}`, notes: `notes for ${action}`, evidence: [`photo://${action}.jpg`],
      ...(action === 'extend' ? { deadline: new Date(Date.parse(c.deadline) + 2 * HOUR).toISOString() } : {}),
    });

    async function act(id: string, action: CaseAction): Promise<CaseJson> {
      // A refusal answers a crew's pending request.
      if (action === 'refuse-extension') expect((await post(id, 'request-extension', tok.crew, { reason: 'pump on order' })).statusCode).toBe(200);
      const cur = (await get(`/api/cases/${id}`, tok.operator)).json() as CaseJson;
      const r = await post(id, action, tok[ROLE_FOR[action]], bodyFor(action, cur));
      expect(r.statusCode, `${action} on ${cur.state}: ${r.body}`).toBe(200);
      return r.json() as CaseJson;
    }

    /** A fresh water-level case whose sensor is back in range long enough to verify. */
    async function freshCase(via = cloud): Promise<{ id: string; device: string }> {
      const device = `WL-T-${String(++next).padStart(4, '0')}`;
      const opened = await send(device, { level_m: 0.9 }, GW, via);
      expect(opened.status).toBe('stored');
      const id = (opened as { cases: { caseId: string }[] }).cases[0].caseId;
      await send(device, { level_m: 0.1 }, GW, via);
      return { id, device };
    }

    /** Drives a fresh case into `state` along legal actions. */
    async function caseIn(state: CaseState): Promise<{ id: string; device: string }> {
      const c = await freshCase(state === 'registered' ? manual : cloud);
      const path: Record<CaseState, CaseAction[]> = {
        registered: [], dispatched: [], accepted: ['accept'], handled: ['accept', 'handle'],
        deferred: ['defer'], closed: ['accept', 'handle', 'verify'], void: ['void'],
      };
      const saved = clock;
      clock += 11 * MIN;
      for (const a of path[state]) await act(c.id, a);
      clock = saved;
      return c;
    }

    it('leaves a sensor case registered, without a dispatch, when auto-dispatch is off', async () => {
      const c = await caseIn('registered');
      const d = (await get(`/api/cases/${c.id}`, tok.operator)).json() as CaseJson;
      expect(d).toMatchObject({ state: 'registered', allowedActions: ['dispatch', 'defer', 'void', 'note'] });
      expect(d.history.map((h) => h.action)).toEqual(['register']);
      const moved = await post(c.id, 'dispatch', tok.operator, { unit: 'xz-municipal', notes: 'municipal crew is nearer' });
      expect(moved.json()).toMatchObject({ state: 'dispatched', unit: 'xz-municipal' });
    });

    for (const state of CASE_STATES) {
      for (const action of CASE_ACTIONS) {
        const to = TRANSITIONS[state][action];
        if (to !== undefined) {
          it(`${action} on a ${state} case is legal and leads to ${to === 'same' ? state : to === 'resume' ? 'the state before deferral' : to}`, async () => {
            const c = await caseIn(state);
            clock += 11 * MIN;
            const after = await act(c.id, action);
            const expected = to === 'same' ? state : to === 'resume' ? 'dispatched' : to;
            expect(after.state).toBe(expected);
            const last = after.history[after.history.length - 1];
            expect(last).toMatchObject({ action, role: ROLE_FOR[action], fromState: state, toState: expected, reason: `test ${action}`, note: `notes for ${action}`, evidence: [`photo://${action}.jpg`] });
            expect(last.actor).toMatch(/^token:tok_/);
          });
        } else {
          it(`${action} on a ${state} case is refused with 409 naming the state and the action`, async () => {
            const c = await caseIn(state);
            const cur = (await get(`/api/cases/${c.id}`, tok.operator)).json() as CaseJson;
            const r = await post(c.id, action, tok.admin, bodyFor(action, cur));
            expect(r.statusCode).toBe(409);
            expect(r.json()).toMatchObject({ statusCode: 409, code: 'CS_CLOUD_CASE_ILLEGAL_ACTION', error: 'Conflict' });
            expect(r.json().message).toContain(`cannot ${action} case ${c.id}: it is ${state}`);
            const again = (await get(`/api/cases/${c.id}`, tok.operator)).json() as CaseJson;
            expect(again.state).toBe(state);
            expect(again.history).toHaveLength(cur.history.length);
          });
        }
      }
    }

    it('records the whole path in an append-only history: who, role, when, reason, notes, evidence, extension approver', async () => {
      const c = await freshCase();
      clock += 11 * MIN;
      await act(c.id, 'accept');
      const extended = await act(c.id, 'extend');
      expect(extended.extensionCount).toBe(1);
      await act(c.id, 'handle');
      const back = await act(c.id, 'rework');
      expect(back).toMatchObject({ state: 'dispatched', reworkCount: 1 });
      await act(c.id, 'accept');
      await act(c.id, 'handle');
      const closed = await act(c.id, 'verify');
      expect(closed.state).toBe('closed');
      expect(closed.history.map((h) => h.action)).toEqual(['register', 'dispatch', 'accept', 'extend', 'handle', 'rework', 'accept', 'handle', 'verify']);
      const ext = closed.history.find((h) => h.action === 'extend')!;
      expect(ext.details).toMatchObject({ approver: expect.stringMatching(/^token:tok_/), to: expect.any(String), from: expect.any(String) });
      expect(closed.history[0]).toMatchObject({ role: 'system', actor: 'citysteward' });
    });

    it('refuses an extension to an earlier deadline and an action without its reason', async () => {
      const c = await freshCase();
      const cur = (await get(`/api/cases/${c.id}`, tok.operator)).json() as CaseJson;
      const early = await post(c.id, 'extend', tok.commander, { reason: 'x', deadline: new Date(Date.parse(cur.deadline) - HOUR).toISOString() });
      expect(early.statusCode).toBe(400);
      expect(early.json()).toMatchObject({ code: 'CS_CLOUD_CASE_BAD_ACTION', message: expect.stringMatching(/not after the current one/) });
      const noReason = await post(c.id, 'void', tok.operator, {});
      expect(noReason.statusCode).toBe(400);
      expect(noReason.json().message).toMatch(/void needs a reason/);
    });

    it('refuses to verify while the sensor is out of range, and until it has been back for the window', async () => {
      const device = `WL-T-${String(++next).padStart(4, '0')}`;
      const opened = await send(device, { level_m: 0.95 });
      const id = (opened as { cases: { caseId: string }[] }).cases[0].caseId;
      await act(id, 'accept');
      await act(id, 'handle');
      const still = await post(id, 'verify', tok.verifier);
      expect(still.statusCode).toBe(409);
      expect(still.json()).toMatchObject({ code: 'CS_CLOUD_CASE_SENSOR_NOT_CLEAR' });
      expect(still.json().message).toMatch(new RegExp(`cannot verify case ${id}: ${device} is still out of range for waterlogging`));
      // Inside the hysteresis band (tier 2 at 0.85, hysteresis 0.05): still not clear.
      await send(device, { level_m: 0.82 });
      expect((await post(id, 'verify', tok.verifier)).json().code).toBe('CS_CLOUD_CASE_SENSOR_NOT_CLEAR');
      await send(device, { level_m: 0.2 });
      clock += 5 * MIN;
      const soon = await post(id, 'verify', tok.verifier);
      expect(soon.statusCode).toBe(409);
      expect(soon.json().message).toMatch(/back in range only since .* \(300 s\); verification needs 600 s/);
      clock += 5 * MIN;
      const ok = await post(id, 'verify', tok.verifier);
      expect(ok.statusCode).toBe(200);
      expect(ok.json()).toMatchObject({ state: 'closed' });
      expect((ok.json() as CaseJson).alarms).toMatchObject([{ active: false, caseId: id }]);
    });

    it('reopens a closed case as rework when the same hazard recurs within the window, and opens a new one after it', async () => {
      const c = await caseIn('closed');
      clock += HOUR;
      const again = await send(c.device, { level_m: 0.9 });
      expect(again).toMatchObject({ status: 'stored', cases: [{ action: 'reopened', caseId: c.id, state: 'dispatched' }] });
      const reopened = (await get(`/api/cases/${c.id}`, tok.operator)).json() as CaseJson;
      expect(reopened).toMatchObject({ state: 'dispatched', reworkCount: 1 });
      expect(reopened.history[reopened.history.length - 1]).toMatchObject({ action: 'reopen', role: 'system', fromState: 'closed', toState: 'dispatched', reason: expect.stringMatching(/recurrence .* rework/) });

      const late = await caseIn('closed');
      clock += 25 * HOUR;
      const fresh = await send(late.device, { level_m: 0.9 });
      expect(fresh).toMatchObject({ cases: [{ action: 'opened' }] });
      expect((fresh as { cases: { caseId: string }[] }).cases[0].caseId).not.toBe(late.id);
      clock -= 25 * HOUR + HOUR;
    });

    it('refuses to reopen a closed case while another case is open for the same asset and hazard', async () => {
      const c = await caseIn('closed');
      clock += 25 * HOUR;
      await send(c.device, { level_m: 0.9 });
      const r = await post(c.id, 'reopen', tok.operator, { reason: 'inspector saw water' });
      expect(r.statusCode).toBe(409);
      expect(r.json()).toMatchObject({ code: 'CS_CLOUD_CASE_ALREADY_OPEN' });
      clock -= 25 * HOUR;
    });

    it('joins related hazards at one manhole into one case and keeps the sensor-health case apart, routed to the maintainer', async () => {
      const mh = 'XZ-MH-002';
      const gw = 'gw-xz-gongbei';
      const a = await send(mh, { cover_open: true, battery_pct: 80 }, gw);
      const caseId = (a as { cases: { caseId: string }[] }).cases[0].caseId;
      const b = await send(mh, { cover_open: true, gas_ch4_ppm: 9000, battery_pct: 10 }, gw);
      const changes = (b as { cases: { caseId: string; hazard: string; action: string; unit: string }[] }).cases;
      expect(changes.find((x) => x.hazard === 'gas')).toMatchObject({ action: 'updated', caseId });
      expect(changes.find((x) => x.hazard === 'low-battery')).toMatchObject({ action: 'opened', unit: 'iot-ops' });
      const merged = (await get(`/api/cases/${caseId}`, tok.operator)).json() as CaseJson;
      expect(merged.hazards).toEqual(['cover-open', 'gas']);
      expect(merged.unit).toBe('zh-gas');
      // Gas allows 2 hours: the merged case is due at the earlier deadline.
      expect(Date.parse(merged.deadline)).toBe(clock + 2 * HOUR);
      expect(merged.milestones.map((m) => m.name)).toEqual(['on-site', 'made-safe']);
      const list = (await get(`/api/cases?device=${mh}&limit=10`, tok.operator)).json().items as CaseJson[];
      expect(list).toHaveLength(2);
      expect((await get('/api/cases?hazard=gas', tok.operator)).json().items.map((x: CaseJson) => x.id)).toEqual([caseId]);
    });

    it('filters cases by unit, state, overdue, emergency and area', async () => {
      const c = await freshCase();
      const saved = clock;
      clock += 7 * HOUR;
      const overdue = (await get('/api/cases?overdue=true&limit=1000', tok.operator)).json().items as (CaseJson & { overdue: boolean })[];
      expect(overdue.map((x) => x.id)).toContain(c.id);
      expect(overdue.every((x) => x.overdue)).toBe(true);
      const grid = (await get('/api/cases?area=440402009&limit=1000', tok.operator)).json().items as CaseJson[];
      expect(grid.length).toBeGreaterThan(0);
      expect((await get('/api/cases?area=4404029999&limit=5', tok.operator)).json().items).toEqual([]);
      const em = (await get('/api/cases?emergency=true&unit=xz-drainage&state=dispatched&limit=1000', tok.operator)).json().items as CaseJson[];
      expect(em.map((x) => x.id)).toContain(c.id);
      clock = saved;
    });

    it('shows the case detail with its alarms and the asset\'s readings since the alarm', async () => {
      const c = await freshCase();
      const d = (await get(`/api/cases/${c.id}`, tok.crew)).json() as CaseJson;
      expect(d.alarms).toHaveLength(1);
      expect(d.readings).toHaveLength(2);
      // refuse-extension only while a request is pending.
      expect(d.allowedActions).toEqual(['accept', 'extend', 'defer', 'void', 'note', 'on-site', 'made-safe', 'request-extension']);
    });

    it('lets a crew read and act on its own unit\'s cases only', async () => {
      const c = await freshCase();
      expect((await get(`/api/cases/${c.id}`, tok.otherCrew)).statusCode).toBe(404);
      const theirs = await post(c.id, 'accept', tok.otherCrew);
      expect(theirs.statusCode).toBe(404);
      expect(theirs.json().code).toBe('CS_CLOUD_CASE_NOT_FOUND');
      expect((await get('/api/cases?limit=1000', tok.otherCrew)).json().items.every((x: CaseJson) => x.unit === 'zh-gas')).toBe(true);
      const verify = await post(c.id, 'verify', tok.crew);
      expect(verify.statusCode).toBe(403);
      expect(verify.json().message).toMatch(/^role crew may not .*verifier.*admin/);
      expect((await get(`/api/cases/${c.id}`, tok.operator)).json().state).toBe('dispatched');
      expect((await post(c.id, 'accept', tok.crew)).statusCode).toBe(200);
    });

    it('refuses a missing or bad token on every route in the OpenAPI document but health and docs', async () => {
      const doc = (await cloud.app.inject({ url: '/docs/json' })).json() as { paths: Record<string, Record<string, unknown>> };
      const actionPaths = Object.keys(doc.paths).filter((p) => p.startsWith('/api/cases/{id}/') && !p.endsWith('/photos'));
      expect(actionPaths.map((p) => p.split('/').pop()).sort()).toEqual([...CASE_ACTIONS].sort());
      let checked = 0;
      for (const [path, methods] of Object.entries(doc.paths)) {
        if (path === '/healthz' || path.startsWith('/docs')) continue;
        for (const method of Object.keys(methods)) {
          // Public by config (sign-in: POST /api/session) needs no token by design.
          if (cloud.app.routeAccess.get(`${method.toUpperCase()} ${path.replace(/\{(\w+)\}/g, ':$1')}`)?.public) continue;
          const url = path.replace('{id}', 'X-1');
          const none = await cloud.app.inject({ method: method.toUpperCase() as 'GET', url });
          expect(none.statusCode, `${method} ${path}`).toBe(401);
          const bad = await cloud.app.inject({ method: method.toUpperCase() as 'GET', url, headers: { authorization: 'Bearer cst_' + 'B'.repeat(43) } });
          expect(bad.statusCode, `${method} ${path}`).toBe(401);
          checked++;
        }
      }
      expect(checked).toBeGreaterThanOrEqual(17);
      for (const a of CASE_ACTIONS) expect(ACTION_ROLES[a]).toContain('admin');
    });

    it('serves the rules, routing and calendar as data', async () => {
      const rules = (await get('/api/rules?device=WL-T-0001', tok.operator)).json();
      expect(rules.devices['WL-T-0001'].map((r: { id: string }) => r.id)).toEqual(expect.arrayContaining(['level-tier1', 'level-rise', 'no-data', 'level-m-range']));
      expect((await get('/api/routing', tok.operator)).json().categories['cover-open']).toMatchObject({ group: 'manhole' });
      const calendar = (await get('/api/calendar', tok.operator)).json();
      expect(calendar).toMatchObject({ holidays: [], workdays: [], state: { source: 'chinese-days', years: { from: 2004 } } });
      expect(calendar.state.holidays).toContain('2026-10-01');
      expect(calendar.state.workdays).toContain('2026-10-10');
    });
  });
});

describe('the open-case predicate of the released migrations', () => {
  it('names exactly the final states of the vocabulary (a state added to FINAL_STATES cannot drift from the SQL)', () => {
    // Compiled without a database: the SQL text the partial unique indexes and ON CONFLICT targets carry.
    const db = new Kysely<unknown>({ dialect: {
      createAdapter: () => new SqliteAdapter(), createDriver: () => new DummyDriver(),
      createIntrospector: (k) => new SqliteIntrospector(k), createQueryCompiler: () => new SqliteQueryCompiler(),
    } });
    const text = OPEN_CASE_PREDICATE.compile(db).sql;
    const m = /^state not in \(((?:'[a-z-]+'(?:, )?)+)\)$/.exec(text);
    expect(m, text).not.toBeNull();
    const named = m![1].split(', ').map((s) => s.slice(1, -1));
    expect([...named].sort()).toEqual([...FINAL_STATES].sort());
    expect(CASE_STATES.filter((s) => !named.includes(s)).every((s) => !isFinal(s))).toBe(true);
  });
});
