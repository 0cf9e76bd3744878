import { createHash } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import ExcelJS from 'exceljs';
import { topics } from '../../lib/topics.ts';
import { buildCloud, type Cloud } from '../../cloud/app.ts';
import { loadFacts } from '../../cloud/evaluation/load.ts';
import { periodOf } from '../../cloud/evaluation/period.ts';
import { evaluate } from '../../cloud/evaluation/report.ts';
import { defaultScoringRules } from '../../cloud/evaluation/scoring.ts';
import type { Figures, Group, Report } from '../../cloud/evaluation/schemas.ts';
import { openDatabase } from '../../cloud/db/database.ts';
import { auditHeads } from '../../cloud/audit/verify.ts';
import { parse as parseCsv } from 'csv-parse/sync';
import { BACKENDS, freshDatabase, profiles, reading, syntheticDistrict, type Backend } from './fixtures.ts';

/**
 * Issue 13's evaluation, end to end: a month of cases with known outcomes made through the real
 * paths (sensor breaches through ingest, people's actions through the API, emergency mode through its
 * switch) under an injected clock, then every figure of two units and one district checked against
 * values computed by hand below (docs/evaluation.md defines due, on time, handling time), through the
 * engine, the API, the CSV and the XLSX.
 */

const MIN = 60_000;
/** Local time in Zhuhai (UTC+8), November 2026 unless another month is given. */
const L = (day: number, hour: number, minute = 0, month = 11) => Date.UTC(2026, month - 1, day, hour - 8, minute);
const GW = 'gw-t-0';
const A = 'xz-drainage';
const B = 'zh-water';

// Devices WL-T-0001.. (one per case); B's owned by zh-water; A9's in Doumen (440403).
const NAMES = ['A1', 'A2', 'A3', 'A4', 'A5', 'A6', 'A7', 'A8', 'A9', 'A10', 'A11', 'A12', 'B1', 'B2', 'B3', 'B4', 'B5'] as const;
/** People's cases (cloud/cases/person.ts): no asset, a point in the district (county 440402). */
type Name = (typeof NAMES)[number] | 'A13' | 'A14' | 'A15' | 'B6' | 'B7';
const base = syntheticDistrict(NAMES.length, 1);
const evalDistrict = {
  ...base,
  devices: base.devices.map((d) => {
    const i = NAMES.findIndex((_, k) => d.id === `WL-T-${String(k + 1).padStart(4, '0')}`);
    if (i < 0) return d;
    const name = NAMES[i];
    return { ...d, ownerUnit: name.startsWith('B') ? B : A, ...(name === 'A9' ? { componentCode: `440403${d.componentCode.slice(6)}` } : {}) };
  }),
};
const deviceOf = (n: Name) => `WL-T-${String(NAMES.indexOf(n as (typeof NAMES)[number]) + 1).padStart(4, '0')}`;

describe.each(BACKENDS)('evaluation on $backend', ({ backend, skip }: { backend: Backend; skip: boolean }) => {
  describe.skipIf(skip)(backend, () => {
    let cloud: Cloud;
    let dbOpts: Awaited<ReturnType<typeof freshDatabase>>['db'];
    let drop: () => Promise<void>;
    let clock = L(30, 10, 0, 10);
    let seq = 0;
    const tok: Record<string, string> = {};
    const id = {} as Record<Name, string>;

    const post = async (c: Name, action: string, body: Record<string, unknown> = {}, role = 'admin') => {
      const r = await cloud.app.inject({ method: 'POST', url: `/api/cases/${id[c]}/${action}`, headers: { authorization: `Bearer ${tok[role]}` }, payload: body });
      expect(r.statusCode, `${action} ${c}: ${r.body}`).toBe(200);
    };
    const at = (t: number) => { expect(t).toBeGreaterThanOrEqual(clock); clock = t; };
    /** A breach of the case's own water-level point (waterlogging, urgent: due in 6 h), back in range at once. */
    async function open(c: Name, t: number) {
      at(t);
      const dev = deviceOf(c);
      const r = await cloud.ingest(GW, topics.up(GW, dev), reading(dev, ++seq, clock, { level_m: 0.9 })) as { cases: { caseId: string }[] };
      id[c] = r.cases[0].caseId;
      await cloud.ingest(GW, topics.up(GW, dev), reading(dev, ++seq, clock, { level_m: 0.1 }));
    }
    async function handle(c: Name, t: number) {
      at(t);
      await post(c, 'accept');
      await post(c, 'handle', { notes: 'pumped' });
    }
    async function close(c: Name, t: number) {
      await handle(c, t);
      await post(c, 'verify', {}, 'verifier');
    }
    /** E0506 waterlogged road goes to A in 6 h, E0502 water main burst to B in 8 h (cloud/catalogue/demo.json). */
    async function person(c: Name, t: number, role: string, body: Record<string, unknown>) {
      at(t);
      const r = await cloud.app.inject({ method: 'POST', url: '/api/cases', headers: { authorization: `Bearer ${tok[role]}` },
        payload: { location: { lat: 22.27, lon: 113.55 }, description: `case ${c}`, ...body } });
      expect(r.statusCode, r.body).toBe(201);
      id[c] = r.json().id;
    }
    const rework = async (c: Name, t: number) => { at(t); await post(c, 'rework', { reason: 'still water' }, 'verifier'); };

    beforeAll(async () => {
      const fresh = await freshDatabase(backend);
      dbOpts = fresh.db;
      drop = fresh.drop;
      cloud = await buildCloud({ db: fresh.db, district: evalDistrict, profiles, now: () => clock, escalation: false, workflow: { verifyClearMs: MIN } });
      await cloud.start();
      for (const r of ['operator', 'commander', 'verifier', 'admin'] as const) tok[r] = await cloud.tokens.create(r);
      tok.crew = await cloud.tokens.create('crew', A);
      tok.inspector = await cloud.tokens.create('inspector');
      // The month, in time order. Every deadline is registration + 6 h unless said.
      await open('A12', L(30, 10, 0, 10)); await close('A12', L(30, 12, 0, 10)); // October: not November's
      await open('A10', L(31, 20, 0, 10)); // due 1 Nov 02:00
      await close('A10', L(1, 1)); // on time, 5 h
      await open('A1', L(3, 10)); await close('A1', L(3, 13)); // on time, 3 h
      await open('B1', L(4, 9)); await close('B1', L(4, 11)); // on time, 2 h
      await open('A2', L(5, 10)); await close('A2', L(5, 20)); // late, 10 h
      await open('B2', L(6, 9)); await close('B2', L(7, 9)); // late, 24 h
      await open('A3', L(7, 10)); await handle('A3', L(7, 11)); await rework('A3', L(7, 11, 30)); await close('A3', L(7, 14)); // on time, reworked once, 4 h
      await open('B3', L(8, 9)); await handle('B3', L(8, 10)); await rework('B3', L(8, 10, 30)); await handle('B3', L(8, 11));
      await rework('B3', L(8, 11, 30)); await close('B3', L(8, 16)); // late (due 15:00), reworked twice, 7 h
      await open('A4', L(9, 10)); at(L(9, 12)); await post('A4', 'extend', { deadline: new Date(L(9, 22)).toISOString(), reason: 'pump broken' }, 'commander');
      await close('A4', L(9, 20)); // on time after the extension to 22:00, 10 h
      await open('A5', L(11, 10)); at(L(11, 11)); await post('A5', 'defer', { reason: 'road closed for works' }, 'commander');
      at(L(13, 10)); await post('A5', 'reopen', { reason: 'works done' }, 'commander'); await close('A5', L(13, 12)); // deferred, closed, 50 h
      await person('A13', L(13, 14), 'inspector', { category: 'E0506' }); await close('A13', L(13, 17)); // inspector's, on time, 3 h
      await person('A14', L(13, 18), 'inspector', { category: 'E0506', selfCorrected: true }); // self-corrected: in no due figure
      await person('B6', L(14, 9), 'operator', { category: 'E0502', source: 'citizen' }); await close('B6', L(14, 19)); // citizen's, late (due 17:00), 10 h
      await open('A6', L(15, 10)); at(L(15, 10, 30)); await post('A6', 'void', { reason: 'sensor splashed by a truck' }, 'operator'); // voided
      await person('B7', L(16, 9), 'operator', { category: 'E0502', source: 'hotline' }); await close('B7', L(16, 12)); // hotline, on time, 3 h
      await person('A15', L(17, 9), 'inspector', { category: 'E0506' }); at(L(17, 9, 30)); await post('A15', 'void', { reason: 'not waterlogged' }, 'operator'); // voided: no point
      await open('B4', L(19, 20)); // due 20 Nov 02:00; open when emergency mode starts: tightened, an emergency case
      at(L(20, 0));
      const on = await cloud.app.inject({ method: 'POST', url: '/api/emergency', headers: { authorization: `Bearer ${tok.commander}` }, payload: { mode: 'emergency', level: 'IV', reason: 'typhoon signal 8' } });
      expect(on.statusCode, on.body).toBe(200);
      await close('B4', L(20, 1)); // on time, 5 h, emergency
      await open('A7', L(20, 2)); await close('A7', L(20, 5)); // emergency, on time, 3 h
      await open('A8', L(20, 6)); // emergency, never closed: open and overdue at the month's end
      at(L(21, 0));
      const off = await cloud.app.inject({ method: 'POST', url: '/api/emergency', headers: { authorization: `Bearer ${tok.commander}` }, payload: { mode: 'normal', reason: 'signal lowered' } });
      expect(off.statusCode, off.body).toBe(200);
      await open('A9', L(22, 10)); await close('A9', L(22, 12)); // Doumen, on time, 2 h
      await open('B5', L(25, 9)); at(L(25, 10)); await post('B5', 'defer', { reason: 'waiting for the owner' }, 'commander'); // still deferred at the end
      await open('A11', L(30, 20)); await close('A11', L(1, 1, 0, 12)); // due in December: not November's
      at(L(2, 9, 0, 12));
    }, 120_000);

    afterAll(async () => {
      await cloud?.stop();
      await drop?.();
    });

    const ids = (...names: Name[]) => names.map((n) => id[n]).sort();
    const none = () => ({ due: [], closed: [], closedOnTime: [], closedLate: [], deferred: [], open: [], overdue: [], reworked: [], extended: [] });
    const empty: Figures = {
      due: 0, closed: 0, closedOnTime: 0, closedLate: 0, deferred: 0, open: 0, overdue: 0, onTimeBase: 0, closureRate: null, onTimeRate: null,
      reworked: 0, reworks: 0, reworkRate: null, extended: 0, extensionRate: null, handlingMeanHours: null, handlingP90Hours: null, cases: none(),
    };

    /** The hand-computed figures (docs/evaluation.md): literal numbers, case lists by name. */
    function expected() {
      // The sensor cases' part (bySource.sensor); people's cases are added after.
      const unitASensor: Figures = {
        due: 9, closed: 8, closedOnTime: 6, closedLate: 1, deferred: 1, open: 1, overdue: 1, onTimeBase: 8,
        closureRate: 0.8889, onTimeRate: 0.75, reworked: 1, reworks: 1, reworkRate: 0.1111, extended: 1, extensionRate: 0.1111,
        handlingMeanHours: 10.88, handlingP90Hours: 50, // 3 10 4 10 50 3 2 5: 87 / 8; rank ⌈7.2⌉ = 8 of 8
        cases: {
          due: ids('A1', 'A2', 'A3', 'A4', 'A5', 'A7', 'A8', 'A9', 'A10'), closed: ids('A1', 'A2', 'A3', 'A4', 'A5', 'A7', 'A9', 'A10'),
          closedOnTime: ids('A1', 'A3', 'A4', 'A7', 'A9', 'A10'), closedLate: ids('A2'), deferred: ids('A5'), open: ids('A8'), overdue: ids('A8'),
          reworked: ids('A3'), extended: ids('A4'),
        },
      };
      const unitAEmergency: Figures = {
        ...empty, due: 2, closed: 1, closedOnTime: 1, open: 1, overdue: 1, onTimeBase: 2, closureRate: 0.5, onTimeRate: 0.5, reworkRate: 0, extensionRate: 0,
        handlingMeanHours: 3, handlingP90Hours: 3,
        cases: { ...none(), due: ids('A7', 'A8'), closed: ids('A7'), closedOnTime: ids('A7'), open: ids('A8'), overdue: ids('A8') },
      };
      const unitBSensor: Figures = {
        due: 5, closed: 4, closedOnTime: 2, closedLate: 2, deferred: 1, open: 1, overdue: 0, onTimeBase: 4,
        closureRate: 0.8, onTimeRate: 0.5, reworked: 1, reworks: 2, reworkRate: 0.2, extended: 0, extensionRate: 0,
        handlingMeanHours: 9.5, handlingP90Hours: 24, // 2 24 7 5: 38 / 4; rank 4 of 4
        cases: {
          ...none(), due: ids('B1', 'B2', 'B3', 'B4', 'B5'), closed: ids('B1', 'B2', 'B3', 'B4'), closedOnTime: ids('B1', 'B4'),
          closedLate: ids('B2', 'B3'), deferred: ids('B5'), open: ids('B5'), reworked: ids('B3'),
        },
      };
      const unitBEmergency: Figures = {
        ...empty, due: 1, closed: 1, closedOnTime: 1, onTimeBase: 1, closureRate: 1, onTimeRate: 1, reworkRate: 0, extensionRate: 0,
        handlingMeanHours: 5, handlingP90Hours: 5, cases: { ...none(), due: ids('B4'), closed: ids('B4'), closedOnTime: ids('B4') },
      };
      const xiangzhouSensor: Figures = {
        due: 13, closed: 11, closedOnTime: 7, closedLate: 3, deferred: 2, open: 2, overdue: 1, onTimeBase: 11,
        closureRate: 0.8462, onTimeRate: 0.6364, reworked: 2, reworks: 3, reworkRate: 0.1538, extended: 1, extensionRate: 0.0769,
        handlingMeanHours: 11.18, handlingP90Hours: 24, // 3 10 4 10 50 3 5 2 24 7 5: 123 / 11; rank ceil(9.9) = 10 of 11
        cases: {
          due: ids('A1', 'A2', 'A3', 'A4', 'A5', 'A7', 'A8', 'A10', 'B1', 'B2', 'B3', 'B4', 'B5'),
          closed: ids('A1', 'A2', 'A3', 'A4', 'A5', 'A7', 'A10', 'B1', 'B2', 'B3', 'B4'),
          closedOnTime: ids('A1', 'A3', 'A4', 'A7', 'A10', 'B1', 'B4'), closedLate: ids('A2', 'B2', 'B3'), deferred: ids('A5', 'B5'),
          open: ids('A8', 'B5'), overdue: ids('A8'), reworked: ids('A3', 'B3'), extended: ids('A4'),
        },
      };
      const xiangzhouEmergency: Figures = {
        ...empty, due: 3, closed: 2, closedOnTime: 2, open: 1, overdue: 1, onTimeBase: 3, closureRate: 0.6667, onTimeRate: 0.6667, reworkRate: 0, extensionRate: 0,
        handlingMeanHours: 4, handlingP90Hours: 5,
        cases: { ...none(), due: ids('A7', 'A8', 'B4'), closed: ids('A7', 'B4'), closedOnTime: ids('A7', 'B4'), open: ids('A8'), overdue: ids('A8') },
      };
      const unitA: Figures = {
        due: 10, closed: 9, closedOnTime: 7, closedLate: 1, deferred: 1, open: 1, overdue: 1, onTimeBase: 9,
        closureRate: 0.9, onTimeRate: 0.7778, reworked: 1, reworks: 1, reworkRate: 0.1, extended: 1, extensionRate: 0.1,
        handlingMeanHours: 10, handlingP90Hours: 50, // + A13's 3 h: 90 / 9; rank ⌈8.1⌉ = 9 of 9
        cases: { ...unitASensor.cases, due: ids('A1', 'A2', 'A3', 'A4', 'A5', 'A7', 'A8', 'A9', 'A10', 'A13'),
          closed: ids('A1', 'A2', 'A3', 'A4', 'A5', 'A7', 'A9', 'A10', 'A13'), closedOnTime: ids('A1', 'A3', 'A4', 'A7', 'A9', 'A10', 'A13') },
      };
      const unitB: Figures = {
        due: 7, closed: 6, closedOnTime: 3, closedLate: 3, deferred: 1, open: 1, overdue: 0, onTimeBase: 6,
        closureRate: 0.8571, onTimeRate: 0.5, reworked: 1, reworks: 2, reworkRate: 0.1429, extended: 0, extensionRate: 0,
        handlingMeanHours: 8.5, handlingP90Hours: 24, // + B6's 10 h and B7's 3 h: 51 / 6; rank 6 of 6
        cases: { ...unitBSensor.cases, due: ids('B1', 'B2', 'B3', 'B4', 'B5', 'B6', 'B7'), closed: ids('B1', 'B2', 'B3', 'B4', 'B6', 'B7'),
          closedOnTime: ids('B1', 'B4', 'B7'), closedLate: ids('B2', 'B3', 'B6') },
      };
      const xiangzhou: Figures = {
        due: 16, closed: 14, closedOnTime: 9, closedLate: 4, deferred: 2, open: 2, overdue: 1, onTimeBase: 14,
        closureRate: 0.875, onTimeRate: 0.6429, reworked: 2, reworks: 3, reworkRate: 0.125, extended: 1, extensionRate: 0.0625,
        handlingMeanHours: 9.93, handlingP90Hours: 24, // 123 + 3 + 10 + 3 = 139 / 14; rank ⌈12.6⌉ = 13 of 14
        cases: { ...xiangzhouSensor.cases, due: ids('A1', 'A2', 'A3', 'A4', 'A5', 'A7', 'A8', 'A10', 'A13', 'B1', 'B2', 'B3', 'B4', 'B5', 'B6', 'B7'),
          closed: ids('A1', 'A2', 'A3', 'A4', 'A5', 'A7', 'A10', 'A13', 'B1', 'B2', 'B3', 'B4', 'B6', 'B7'),
          closedOnTime: ids('A1', 'A3', 'A4', 'A7', 'A10', 'A13', 'B1', 'B4', 'B7'), closedLate: ids('A2', 'B2', 'B3', 'B6') },
      };
      /** One closed person's case: on time or late, its handling hours. */
      const one = (c: Name, onTime: boolean, hours: number): Figures => ({
        ...empty, due: 1, closed: 1, closedOnTime: onTime ? 1 : 0, closedLate: onTime ? 0 : 1, onTimeBase: 1, closureRate: 1, onTimeRate: onTime ? 1 : 0,
        reworkRate: 0, extensionRate: 0, handlingMeanHours: hours, handlingP90Hours: hours,
        cases: { ...none(), due: [id[c]], closed: [id[c]], [onTime ? 'closedOnTime' : 'closedLate']: [id[c]] },
      });
      const A13 = one('A13', true, 3);
      const B6 = one('B6', false, 10);
      const B7 = one('B7', true, 3);
      return {
        unitA, unitAEmergency, unitASources: { sensor: unitASensor, inspector: A13, hotline: empty, citizen: empty },
        unitB, unitBEmergency, unitBSources: { sensor: unitBSensor, inspector: empty, hotline: B7, citizen: B6 },
        xiangzhou, xiangzhouEmergency, xiangzhouSources: { sensor: xiangzhouSensor, inspector: A13, hotline: B7, citizen: B6 },
      };
    }

    function checkGroup(g: Group | undefined, figures: Figures, emergency: Figures, bySource: Group['bySource'], score: number, rank: number, voided: Name[], self: Name[]) {
      expect(g).toBeDefined();
      expect(g!.figures).toEqual(figures);
      expect(g!.emergency).toEqual(emergency);
      expect(g!.bySource).toEqual(bySource);
      expect(g!.score).toBe(score);
      expect(g!.rank).toBe(rank);
      expect(g!.voided).toEqual({ count: voided.length, cases: ids(...voided) });
      expect(g!.selfCorrected).toEqual({ count: self.length, cases: ids(...self) });
    }

    /** Unit A: 7 on time of 9 (77.78 % ≥ 70 %: 50) − 1 rework = 49; unit B: 3 of 6 (50 %: 50 − 20) − 2 = 28. */
    function checkByUnit(r: Report) {
      const e = expected();
      expect(r.period).toEqual({ from: '2026-10-31T16:00:00.000Z', to: '2026-11-30T16:00:00.000Z', month: '2026-11', utcOffsetMinutes: 480 });
      expect(r.groups.map((g) => [g.key, g.rank, g.score])).toEqual([[A, 1, 49], [B, 2, 28], ['iot-ops', null, null], ['xz-municipal', null, null], ['zh-gas', null, null]]);
      checkGroup(r.groups.find((g) => g.key === A), e.unitA, e.unitAEmergency, e.unitASources, 49, 1, ['A6', 'A15'], ['A14']);
      checkGroup(r.groups.find((g) => g.key === B), e.unitB, e.unitBEmergency, e.unitBSources, 28, 2, [], []);
      expect(r.fallback.cases).toEqual([]);
      expect(r.totals.figures.due).toBe(17);
      expect(r.groups[0].scoreItems).toEqual([{ item: 'on-time closure (按期结案率)', value: 0.7778, points: 50 }, { item: 'rework (返工)', value: 1, points: -1 }]);
    }

    /** Xiangzhou 440402: 9 of 14 on time (64.29 %: 50 − 5.71) − 3 reworks = 41.29; Doumen 440403: A9 alone, 50. */
    function checkByDistrict(r: Report) {
      const e = expected();
      expect(r.groups.map((g) => [g.key, g.rank, g.score])).toEqual([['440403', 1, 50], ['440402', 2, 41.29]]);
      checkGroup(r.groups.find((g) => g.key === '440402'), e.xiangzhou, e.xiangzhouEmergency, e.xiangzhouSources, 41.29, 2, ['A6', 'A15'], ['A14']);
    }

    async function engine(by: 'unit' | 'district') {
      const db = openDatabase(dbOpts);
      try {
        const period = periodOf({ month: '2026-11' }, clock, 480);
        return evaluate({ facts: await loadFacts(db.db, period), period, by, rules: defaultScoringRules(), keys: by === 'unit' ? evalDistrict.units.map((u) => u.id) : [], now: clock });
      } finally {
        await db.close();
      }
    }
    const api = (query: string, role = 'operator') => cloud.app.inject({ url: `/api/evaluation?${query}`, headers: { authorization: `Bearer ${tok[role]}` } });

    it('the engine counts every figure of two units and one district as computed by hand', async () => {
      checkByUnit(await engine('unit'));
      checkByDistrict(await engine('district'));
    });

    it('the API answers the same JSON to operator, commander, verifier and admin, and 403 to a crew', async () => {
      for (const role of ['operator', 'commander', 'verifier', 'admin']) {
        const r = await api('month=2026-11&by=unit', role);
        expect(r.statusCode, r.body).toBe(200);
        checkByUnit(r.json());
      }
      const d = await api('from=2026-11-01&to=2026-12-01&by=district');
      expect(d.statusCode, d.body).toBe(200);
      checkByDistrict(d.json());
      expect((await api('month=2026-11', 'crew')).statusCode).toBe(403);
      for (const q of ['from=2026-11-02&to=2026-11-01', 'month=2026-11&from=2026-11-01&to=2026-12-01', 'from=2026-11-01', 'month=2026-13', 'by=street', 'from=2026-02-30&to=2026-03-01']) {
        const r = await api(q);
        expect(r.statusCode, q).toBe(400);
        expect(r.json().code, q).toMatch(/^CS_CLOUD_(BAD_QUERY|VALIDATION)$/);
      }
    });

    it('states the chain heads it counted on: a digest over the counted cases\' history heads, and their count', async () => {
      const r = (await api('month=2026-11')).json() as Report;
      const counted = ids('A1', 'A2', 'A3', 'A4', 'A5', 'A6', 'A7', 'A8', 'A9', 'A10', 'A13', 'A14', 'A15', 'B1', 'B2', 'B3', 'B4', 'B5', 'B6', 'B7');
      const db = openDatabase(dbOpts);
      try {
        const heads = await db.db.selectFrom('cases').select(['id', 'history_head']).where('id', 'in', counted).orderBy('id').execute();
        const want = createHash('sha256').update(heads.map((h) => `${h.id}:${h.history_head}\n`).join('')).digest('hex');
        const logs = await auditHeads(db.db, []);
        expect(logs.emergencyLog).toMatch(/^[0-9a-f]{64}$/); // the month's two switches
        // Nothing happened to them after the month: the heads at its end are today's.
        expect(r.chain).toEqual({ cases: 20, caseIds: counted, digest: want, currentDigest: want, emergencyLog: logs.emergencyLog, credentialLog: logs.credentialLog });
        expect((await auditHeads(db.db, counted)).caseHistory).toEqual({ cases: 20, digest: want });
        // A note on a counted case in December moves today's head, not the month's.
        await cloud.app.inject({ method: 'POST', url: `/api/cases/${id.A1}/note`, headers: { authorization: `Bearer ${tok.admin}` }, payload: { notes: 'checked again' } });
        const later = (await api('month=2026-11')).json() as Report;
        expect(later.chain.digest).toBe(want);
        expect(later.chain.currentDigest).not.toBe(want);
        checkByUnit(later);
      } finally {
        await db.close();
      }
    });

    it('by inspector: points per case registered, self-corrected and verified in the month (一案一积分), ranked', async () => {
      const r = (await api('month=2026-11&by=inspector')).json() as Report;
      expect(r.rules.rankedBy).toBe('points');
      const actorOf = async (c: Name, action: string) => ((await cloud.app.inject({ url: `/api/cases/${id[c]}`, headers: { authorization: `Bearer ${tok.admin}` } }))
        .json().history as { action: string; actor: string }[]).find((h) => h.action === action)!.actor;
      const [verifier, inspector, operator] = [await actorOf('A1', 'verify'), await actorOf('A13', 'register'), await actorOf('B6', 'register')];
      // Verifications: A10 A1 B1 A2 B2 A3 (rework, verify) B3 (rework ×2, verify) A4 A5 A13 B6 B7 B4 A7 A9 = 18 points;
      // the inspector: A13 registered (1) + A14 self-corrected (2), A15 voided (0) = 3; the operator: B6, B7 = 2.
      expect(r.groups.map((g) => [g.key, g.rank, g.points!.points])).toEqual([[verifier, 1, 18], [inspector, 2, 3], [operator, 3, 2]]);
      expect(r.groups[0].points!.verified.cases).toEqual(
        [...ids('A10', 'A1', 'B1', 'A2', 'B2', 'A4', 'A5', 'A13', 'B6', 'B7', 'B4', 'A7', 'A9'), id.A3, id.A3, id.B3, id.B3, id.B3].sort());
      expect(r.groups[1].points).toEqual({ registered: { count: 1, cases: ids('A13') }, selfCorrected: { count: 1, cases: ids('A14') }, verified: { count: 0, cases: [] }, points: 3 });
      expect(r.groups[1]).toMatchObject({ figures: { due: 1, closedOnTime: 1 }, selfCorrected: { count: 1 }, voided: { count: 1, cases: ids('A15') } });
      expect(r.groups[2].points).toMatchObject({ registered: { count: 2, cases: ids('B6', 'B7') }, points: 2 });
    });

    /** The hand-computed values of the export columns: A, B (by unit), 440402 (by district). */
    const FLAT: Record<string, Record<string, string | number>> = {
      [A]: { rank: 1, score: 49, due: 10, closed: 9, closedOnTime: 7, closedLate: 1, deferred: 1, open: 1, overdue: 1, onTimeBase: 9, closureRate: 0.9, onTimeRate: 0.7778,
        reworked: 1, reworks: 1, reworkRate: 0.1, extended: 1, extensionRate: 0.1, handlingMeanHours: 10, handlingP90Hours: 50,
        'emergency.due': 2, 'emergency.closedOnTime': 1, 'emergency.onTimeRate': 0.5, 'sensor.due': 9, 'inspector.due': 1, 'citizen.due': 0, voided: 2, selfCorrected: 1 },
      [B]: { rank: 2, score: 28, due: 7, closed: 6, closedOnTime: 3, closedLate: 3, deferred: 1, open: 1, overdue: 0, onTimeBase: 6, closureRate: 0.8571, onTimeRate: 0.5,
        reworked: 1, reworks: 2, reworkRate: 0.1429, extended: 0, extensionRate: 0, handlingMeanHours: 8.5, handlingP90Hours: 24,
        'emergency.due': 1, 'emergency.closedOnTime': 1, 'emergency.onTimeRate': 1, 'sensor.due': 5, 'citizen.due': 1, 'citizen.onTimeRate': 0, 'hotline.onTimeRate': 1, voided: 0, selfCorrected: 0 },
      440402: { rank: 2, score: 41.29, due: 16, closed: 14, closedOnTime: 9, closedLate: 4, deferred: 2, open: 2, overdue: 1, onTimeBase: 14, closureRate: 0.875,
        onTimeRate: 0.6429, reworked: 2, reworks: 3, reworkRate: 0.125, extended: 1, extensionRate: 0.0625, handlingMeanHours: 9.93, handlingP90Hours: 24,
        'emergency.due': 3, 'emergency.closedOnTime': 2, 'emergency.onTimeRate': 0.6667, 'sensor.due': 13, 'citizen.due': 1, 'hotline.due': 1, voided: 2, selfCorrected: 1 },
    };

    it('CSV: one row per group with the same figures, read back', async () => {
      for (const [by, keys] of [['unit', [A, B]], ['district', ['440402']]] as const) {
        const r = await api(`month=2026-11&by=${by}&format=csv`);
        expect(r.statusCode).toBe(200);
        expect(r.headers['content-type']).toBe('text/csv; charset=utf-8');
        expect(r.headers['content-disposition']).toBe(`attachment; filename="evaluation-2026-11-by-${by}.csv"`);
        expect(r.body.startsWith('\uFEFF')).toBe(true);
        const [head, ...rows] = parseCsv(r.body.slice(1));
        expect(rows[0][0]).toBe('all');
        for (const key of keys) {
          const row = rows.find((x) => x[0] === key)!;
          const got = Object.fromEntries(head.map((h, i) => [h, row[i]]));
          for (const [k, v] of Object.entries(FLAT[key])) expect(got[k], `${key} ${k}`).toBe(String(v));
        }
        if (by === 'unit') {
          const a = rows.find((x) => x[0] === A)!;
          expect(a[head.indexOf('dueCases')].split(' ')).toEqual(ids('A1', 'A2', 'A3', 'A4', 'A5', 'A7', 'A8', 'A9', 'A10', 'A13'));
          expect(rows.find((x) => x[0] === B)![1]).toBe(evalDistrict.units.find((u) => u.id === B)!.name);
        }
      }
    });

    it('XLSX: the Ranking sheet holds the same figures, the Cases sheet what each case counted as, read back with exceljs', async () => {
      for (const [by, keys] of [['unit', [A, B]], ['district', ['440402']]] as const) {
        const r = await api(`month=2026-11&by=${by}&format=xlsx`);
        expect(r.statusCode).toBe(200);
        expect(r.headers['content-type']).toBe('application/vnd.openxmlformats-officedocument.spreadsheetml.sheet');
        const wb = new ExcelJS.Workbook();
        await wb.xlsx.load(r.rawPayload as unknown as ArrayBuffer);
        const sheet = wb.getWorksheet('Ranking')!;
        const head = (sheet.getRow(1).values as unknown[]).slice(1) as string[];
        const rows: unknown[][] = [];
        sheet.eachRow((row, n) => { if (n > 1) rows.push((row.values as unknown[]).slice(1)); });
        for (const key of keys) {
          const row = rows.find((x) => String(x[0]) === key)!;
          const got = Object.fromEntries(head.map((h, i) => [h, row[i]]));
          for (const [k, v] of Object.entries(FLAT[key])) expect(String(got[k]), `${key} ${k}`).toBe(String(v));
        }
        if (by === 'unit') {
          const cases: unknown[][] = [];
          wb.getWorksheet('Cases')!.eachRow((row, n) => { if (n > 1) cases.push((row.values as unknown[]).slice(1, 5)); });
          const of = (n: Name) => cases.find((c) => c[1] === id[n])!.slice(2, 4);
          expect([of('A1'), of('A2'), of('A5'), of('A8'), of('A6'), of('B3'), of('A13'), of('A14'), of('B6')]).toEqual([['due', 'on time'], ['due', 'late'],
            ['due', 'deferred'], ['due', 'open'], ['voided', undefined], ['due', 'late'], ['due', 'on time'], ['self-corrected', undefined], ['due', 'late']]);
          expect(cases.some((c) => c[1] === id.A11 || c[1] === id.A12)).toBe(false);
          const meta = wb.getWorksheet('Report')!;
          expect(meta.getRow(1).values).toEqual([undefined, 'from', '2026-10-31T16:00:00.000Z']);
        }
      }
    });
  });
});
