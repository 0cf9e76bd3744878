import { spawn } from 'node:child_process';
import { DEMO_CATALOGUE } from '../../cloud/catalogue/index.ts';
import { join } from 'node:path';
import { sql } from 'kysely';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { topics } from '../../lib/topics.ts';
import { buildCloud, type Cloud, type DbOptions } from '../../cloud/app.ts';
import { openDatabase } from '../../cloud/db/database.ts';
import { BACKENDS, ROOT, district, freshDatabase, profiles, type Backend } from './fixtures.ts';

/** Ingest: validation, idempotency, case opening and updating, concurrent workers, on SQLite and on PostgreSQL alike. */

const T0 = Date.parse('2026-11-25T02:00:00Z');
const HOUR = 3_600_000;

// XZ-WL-001: water level on gw-xz-jida, owned by xz-drainage. XZ-MH-001: manhole on gw-xz-gongbei, owned by zh-gas.
const WL = { gw: 'gw-xz-jida', id: 'XZ-WL-001' };
const MH = { gw: 'gw-xz-gongbei', id: 'XZ-MH-001' };

function payload(device: string, seq: number, values: Record<string, unknown>, extra: Record<string, unknown> = {}): Buffer {
  return Buffer.from(JSON.stringify({ seq, ts: new Date(T0 + seq * 1000).toISOString(), device, values, quality: 'good', historical: false, ...extra }));
}

/** Rows in insertion order on both engines (PostgreSQL promises no order without ORDER BY). */
const ROW_ORDER = { readings: ['gateway', 'seq'], cases: ['id'], case_history: ['case_id', 'seq'] } as const;

describe.each(BACKENDS)('ingest on $backend', ({ backend, skip }: { backend: Backend; skip: boolean }) => {
  if (skip) console.warn(`ingest on ${backend}: skipped, PostgreSQL is not reachable`);
  describe.skipIf(skip)(backend, () => {
    /** What "the same database" is on this backend, for the names of the two-worker tests. */
    const sameDb = backend === 'sqlite' ? 'the same SQLite file' : 'the same PostgreSQL database';
    let main: DbOptions;
    let clock: number;
    let cloud: Cloud;
    const open: Cloud[] = [];
    const drops: (() => Promise<void>)[] = [];

    async function database(): Promise<DbOptions> {
      const fresh = await freshDatabase(backend);
      drops.push(fresh.drop);
      return fresh.db;
    }

    async function newCloud(db = main): Promise<Cloud> {
      const c = await buildCloud({ db, district, profiles, now: () => clock, escalation: false });
      open.push(c);
      await c.start();
      return c;
    }

    beforeEach(async () => {
      main = await database();
      clock = T0;
      cloud = await newCloud();
    });

    afterEach(async () => {
      for (const c of open.splice(0)) await c.stop();
      for (const drop of drops.splice(0)) await drop();
    });

    async function rows(table: 'readings' | 'cases' | 'case_history') {
      const db = openDatabase(main);
      try {
        let q = db.db.selectFrom(table).selectAll();
        for (const col of ROW_ORDER[table]) q = q.orderBy(sql.ref(col));
        return await q.execute();
      } finally {
        await db.close();
      }
    }

    it('stores a valid reading', async () => {
      const r = await cloud.ingest(WL.gw, topics.up(WL.gw, WL.id), payload(WL.id, 1, { level_m: 0.02, battery_pct: 92 }));
      expect(r).toMatchObject({ status: 'stored', seq: 1, device: WL.id, cases: [] });
      const stored = await rows('readings');
      expect(stored).toHaveLength(1);
      expect(stored[0]).toMatchObject({ gateway: WL.gw, seq: 1, device: WL.id, ts: T0 + 1000, received_at: T0, quality: 'good', historical: 0 });
      expect(JSON.parse(stored[0].values_json as string)).toEqual({ level_m: 0.02, battery_pct: 92 });
      expect(cloud.stats()).toMatchObject({ stored: 1, duplicates: 0, rejected: {} });
    });

    it('rejects and counts malformed readings by reason, then stores the next valid one', async () => {
      const t = topics.up(WL.gw, WL.id);
      const bad = await cloud.ingest(WL.gw, t, Buffer.from('{"seq": 1, '));
      expect(bad).toMatchObject({ status: 'rejected', reason: 'bad-json' });
      const invalid = await cloud.ingest(WL.gw, t, payload(WL.id, 2, { level_m: 0.1 }, { seq: -5 }));
      expect(invalid).toMatchObject({ status: 'rejected', reason: 'invalid' });
      expect((invalid as { message: string }).message).toMatch(/seq/);
      const noValues = await cloud.ingest(WL.gw, t, payload(WL.id, 3, {}));
      expect((noValues as { message: string }).message).toMatch(/values/);
      const wrongDevice = await cloud.ingest(WL.gw, t, payload('XZ-WL-003', 4, { level_m: 0.1 }));
      expect(wrongDevice).toMatchObject({ status: 'rejected', reason: 'device-mismatch' });
      const unknown = await cloud.ingest(WL.gw, topics.up(WL.gw, 'XZ-NOPE-9'), payload('XZ-NOPE-9', 5, { level_m: 0.1 }));
      expect(unknown).toMatchObject({ status: 'rejected', reason: 'unknown-device' });
      const otherGateway = await cloud.ingest(MH.gw, topics.up(MH.gw, WL.id), payload(WL.id, 6, { level_m: 0.1 }));
      expect(otherGateway).toMatchObject({ status: 'rejected', reason: 'wrong-gateway' });
      const outside = await cloud.ingest(MH.gw, t, payload(WL.id, 7, { level_m: 0.1 }));
      expect(outside).toMatchObject({ status: 'rejected', reason: 'topic-mismatch' });

      const good = await cloud.ingest(WL.gw, t, payload(WL.id, 8, { level_m: 0.1 }));
      expect(good.status).toBe('stored');
      expect(cloud.stats()).toMatchObject({
        stored: 1,
        rejected: { 'bad-json': 1, invalid: 2, 'device-mismatch': 1, 'unknown-device': 1, 'wrong-gateway': 1, 'topic-mismatch': 1 },
      });
      expect((await rows('readings')).map((r) => r.seq)).toEqual([8]);
    });

    it('stores a replayed (gateway, seq) once and does not evaluate it again', async () => {
      const t = topics.up(WL.gw, WL.id);
      const p = payload(WL.id, 42, { level_m: 0.9 });
      expect((await cloud.ingest(WL.gw, t, p)).status).toBe('stored');
      expect((await cloud.ingest(WL.gw, t, p)).status).toBe('duplicate');
      expect(await rows('readings')).toHaveLength(1);
      const cases = await rows('cases');
      expect(cases).toHaveLength(1);
      expect(cases[0].breach_count).toBe(1);
      expect(cloud.stats()).toMatchObject({ stored: 1, duplicates: 1, casesOpened: 1, casesUpdated: 0 });
    });

    it('opens one dispatched case for a breach, routed to the owner with an absolute deadline', async () => {
      const r = await cloud.ingest(WL.gw, topics.up(WL.gw, WL.id), payload(WL.id, 1, { level_m: 0.92 }));
      expect(r).toMatchObject({ status: 'stored', cases: [{ action: 'opened', hazard: 'waterlogging', severity: 'major' }] });
      const [c] = await rows('cases');
      expect(c).toMatchObject({
        id: 'C-20261125-0001', device: WL.id, hazard: 'waterlogging', class: 'urgent', severity: 'major', state: 'dispatched',
        unit: 'xz-drainage', opened_at: T0, deadline_at: T0 + 6 * HOUR, emergency: 1, breach_count: 1, component_code: '4404020520000001',
      });
      const history = await rows('case_history');
      expect(history.map((h) => [h.action, h.from_state, h.to_state])).toEqual([
        ['register', null, 'registered'],
        ['dispatch', 'registered', 'dispatched'],
      ]);
    });

    it('routes a low battery to the maintainer with a 48-hour deadline', async () => {
      await cloud.ingest(MH.gw, topics.up(MH.gw, MH.id), payload(MH.id, 1, { battery_pct: 10 }));
      const [c] = await rows('cases');
      expect(c).toMatchObject({ hazard: 'low-battery', class: 'device-health', unit: 'iot-ops', deadline_at: T0 + 48 * HOUR, emergency: 0 });
    });

    it('caps an urgent case at 12 hours after registration even when its category allows more', async () => {
      const slowDb = await database();
      const slow = await buildCloud({
        db: slowDb, district, profiles, now: () => clock,
        catalogue: { ...DEMO_CATALOGUE, categories: DEMO_CATALOGUE.categories.map((c) => (c.hazards?.includes('waterlogging') ? { ...c, limit: { amount: 72, unit: 'hours' as const } } : c)) },
      });
      open.push(slow);
      await slow.start();
      clock = T0 + 5 * 60_000;
      await slow.ingest(WL.gw, topics.up(WL.gw, WL.id), payload(WL.id, 1, { level_m: 0.99 }));
      const db = openDatabase(slowDb);
      try {
        const c = await db.db.selectFrom('cases').selectAll().executeTakeFirstOrThrow();
        expect(c.deadline_at).toBe(clock + 12 * HOUR);
        expect(new Date(c.deadline_at).toISOString()).toBe('2026-11-25T14:05:00.000Z');
      } finally {
        await db.close();
      }
    });

    it('updates the open case on a repeat breach instead of opening a second one', async () => {
      const t = topics.up(WL.gw, WL.id);
      await cloud.ingest(WL.gw, t, payload(WL.id, 1, { level_m: 0.9 }));
      clock = T0 + 60_000;
      const r = await cloud.ingest(WL.gw, t, payload(WL.id, 2, { level_m: 0.97 }));
      expect(r).toMatchObject({ status: 'stored', cases: [{ action: 'updated', severity: 'critical' }] });
      const cases = await rows('cases');
      expect(cases).toHaveLength(1);
      expect(cases[0]).toMatchObject({ breach_count: 2, severity: 'critical', last_value: '0.97', updated_at: T0 + 60_000, opened_at: T0 });
      const history = await rows('case_history');
      expect(history.map((h) => h.action)).toEqual(['register', 'dispatch', 'update']);
      expect(history[2].note).toMatch(/severity major -> critical/);
      expect(cloud.stats()).toMatchObject({ casesOpened: 1, casesUpdated: 1 });
    });

    it('raises a routine tier-1 waterlogging case to urgent when tier 2 is reached, keeping the 12-hour cap', async () => {
      const t = topics.up(WL.gw, WL.id);
      await cloud.ingest(WL.gw, t, payload(WL.id, 1, { level_m: 0.75 }));
      expect((await rows('cases'))[0]).toMatchObject({ class: 'routine', deadline_at: T0 + 24 * HOUR, emergency: 0 });
      clock = T0 + 8 * HOUR;
      await cloud.ingest(WL.gw, t, payload(WL.id, 2, { level_m: 0.9 }));
      expect((await rows('cases'))[0]).toMatchObject({ class: 'urgent', deadline_at: T0 + 12 * HOUR, emergency: 1, breach_count: 2 });
    });

    it('stores a historical breach but opens no case for it', async () => {
      const r = await cloud.ingest(WL.gw, topics.up(WL.gw, WL.id), payload(WL.id, 1, { level_m: 0.99 }, { historical: true }));
      expect(r).toMatchObject({ status: 'stored', cases: [] });
      expect(await rows('readings')).toHaveLength(1);
      expect(await rows('cases')).toHaveLength(0);
    });

    it('lets a historical breach update an already open case', async () => {
      const t = topics.up(WL.gw, WL.id);
      await cloud.ingest(WL.gw, t, payload(WL.id, 2, { level_m: 0.9 }));
      const r = await cloud.ingest(WL.gw, t, payload(WL.id, 1, { level_m: 0.88 }, { historical: true }));
      expect(r).toMatchObject({ status: 'stored', cases: [{ action: 'updated' }] });
      expect((await rows('cases'))[0].breach_count).toBe(2);
    });

    it('a historical (replayed) breach does not overwrite the open case\'s last value and updated time with an older value', async () => {
      const t = topics.up(WL.gw, WL.id);
      await cloud.ingest(WL.gw, t, payload(WL.id, 2, { level_m: 0.9 }));
      const before = (await rows('cases'))[0];
      clock += 60_000;
      const r = await cloud.ingest(WL.gw, t, payload(WL.id, 1, { level_m: 0.88 }, { historical: true }));
      expect(r).toMatchObject({ status: 'stored', cases: [{ action: 'updated' }] });
      const after = (await rows('cases'))[0];
      expect(JSON.parse(after.last_value)).toBe(0.9);
      expect(Number(after.updated_at)).toBe(Number(before.updated_at));
      expect(after.breach_count).toBe(2);
    });

    it(`keeps one open case when two cloud instances on ${sameDb} ingest the same breach concurrently`, async () => {
      const second = await newCloud();
      const t = topics.up(WL.gw, WL.id);
      const results = await Promise.all(Array.from({ length: 20 }, (_, i) =>
        (i % 2 ? second : cloud).ingest(WL.gw, t, payload(WL.id, i + 1, { level_m: 0.9 }))));
      expect(results.every((r) => r.status === 'stored')).toBe(true);
      const cases = await rows('cases');
      expect(cases).toHaveLength(1);
      expect(cases[0].breach_count).toBe(20);
      expect(cloud.stats().casesOpened + second.stats().casesOpened).toBe(1);
    });

    it(`keeps one open case when two processes on ${sameDb} ingest breaches at once`, async () => {
      const script = (offset: number) => `
        import { buildCloud } from ${JSON.stringify(join(ROOT, 'cloud/app.ts'))};
        import { loadProfiles } from ${JSON.stringify(join(ROOT, 'devices/profile.ts'))};
        import { loadDistrict } from ${JSON.stringify(join(ROOT, 'devices/district.ts'))};
        const profiles = loadProfiles();
        const district = loadDistrict(${JSON.stringify(join(ROOT, 'devices/district/xiangzhou.yaml'))}, profiles);
        const cloud = await buildCloud({ db: ${JSON.stringify(main)}, district, profiles });
        await cloud.start();
        // Ready: wait for the parent's "go", sent once both workers are ready.
        process.stdout.write('ready\\n');
        await new Promise((r) => process.stdin.once('data', r));
        const out = [];
        for (let i = 0; i < 25; i++) {
          const seq = ${offset} + i;
          const body = JSON.stringify({ seq, ts: new Date().toISOString(), device: 'XZ-WL-001', values: { level_m: 0.9 } });
          out.push(cloud.ingest('gw-xz-jida', 'cs/v1/gw-xz-jida/up/XZ-WL-001', Buffer.from(body)));
        }
        await Promise.all(out);
        process.stdout.write(JSON.stringify(cloud.stats()) + '\\n');
        process.stdin.destroy();
        await cloud.stop();
      `;
      const run = (offset: number, ready: () => void, go: Promise<void>) => new Promise<{ casesOpened: number; stored: number }>((resolve, reject) => {
        const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script(offset)], { cwd: ROOT, stdio: ['pipe', 'pipe', 'pipe'] });
        let out = '';
        let err = '';
        let signalled = false;
        child.stdout.on('data', (d) => {
          out += d;
          if (!signalled && out.startsWith('ready\n')) {
            signalled = true;
            ready();
            void go.then(() => child.stdin.write('go\n'));
          }
        });
        child.stderr.on('data', (d) => (err += d));
        child.on('exit', (code) => (code === 0 ? resolve(JSON.parse(out.split('\n')[1])) : reject(new Error(`worker exited ${code}: ${err}`))));
      });
      let readyCount = 0;
      let release!: () => void;
      const go = new Promise<void>((r) => (release = r));
      const onReady = () => { if (++readyCount === 2) release(); };
      const [a, b] = await Promise.all([run(1000, onReady, go), run(2000, onReady, go)]);
      expect(a.stored + b.stored).toBe(50);
      expect(a.casesOpened + b.casesOpened).toBe(1);
      const cases = await rows('cases');
      expect(cases).toHaveLength(1);
      expect(cases[0].breach_count).toBe(50);
    });

    it('lets the database itself refuse a second open case for a device and hazard, but not once the first is closed', async () => {
      await cloud.ingest(WL.gw, topics.up(WL.gw, WL.id), payload(WL.id, 1, { level_m: 0.9 }));
      const db = openDatabase(main);
      try {
        const first = await db.db.selectFrom('cases').selectAll().executeTakeFirstOrThrow();
        const copy = { ...first, id: 'C-TEST-2' };
        await expect(db.write((trx) => trx.insertInto('cases').values(copy).execute())).rejects.toThrow(backend === 'sqlite' ? /UNIQUE/ : /duplicate key value violates unique constraint/);
        await db.write((trx) => trx.updateTable('cases').set({ state: 'closed' }).where('id', '=', first.id).execute());
        await db.write((trx) => trx.insertInto('cases').values(copy).execute());
        expect(await db.db.selectFrom('cases').select('id').execute()).toHaveLength(2);
      } finally {
        await db.close();
      }
    });
  });
});
