import { createRequire } from 'node:module';
import { Worker } from 'node:worker_threads';
import { sql } from 'kysely';
import pg from 'pg';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { Sqlite } from '../../lib/sqlite.ts';
import { silentLogger } from '../../lib/log.ts';
import { DEFAULT_CATEGORIES } from '../../cloud/categories.ts';
import { createCalendar } from '../../cloud/calendar.ts';
import { DEFAULT_WORKFLOW } from '../../cloud/cases/index.ts';
import { openDatabase, type Database } from '../../cloud/db/database.ts';
import { createEventBus } from '../../cloud/events.ts';
import { createIngestor, type IngestResult, type Ingestor } from '../../cloud/ingest.ts';
import type { BatchOptions } from '../../cloud/ingest-batch.ts';
import { NORMAL_MODE } from '../../cloud/mode.ts';
import { DEFAULT_ROUTING } from '../../cloud/routing.ts';
import { createRuleEngine } from '../../cloud/rules.ts';
import { defaultRuleSet } from '../../devices/rules.ts';
import { BACKENDS, freshDatabase, profiles, reading, syntheticDistrict, type Backend } from './fixtures.ts';

/**
 * Group commit (docs/architecture.md#ingest): readings checked one by one, stored a batch per
 * transaction, each settled only after its batch committed; a failing reading fails alone.
 */

const T0 = Date.parse('2026-11-25T02:00:00Z');
const DEVICES = 20;
const district = syntheticDistrict(DEVICES, 2);
const points = district.devices.filter((d) => d.id.startsWith('WL-T-')).map((d, i) => ({ id: d.id, gw: `gw-t-${i % 2}` }));
const topic = (p: { id: string; gw: string }) => `cs/v1/${p.gw}/up/${p.id}`;

describe.each(BACKENDS)('group commit on $backend', ({ backend, skip }: { backend: Backend; skip: boolean }) => {
  describe.skipIf(skip)(backend, () => {
    let database: Database;
    let ingestor: Ingestor;
    let url: string;
    let file: string;
    let drop: () => Promise<void>;

    async function start(batch: Partial<BatchOptions> = {}): Promise<void> {
      const fresh = await freshDatabase(backend as Backend);
      drop = fresh.drop;
      if (fresh.db.kind === 'sqlite') file = fresh.db.file;
      else url = fresh.db.url;
      database = openDatabase(fresh.db);
      await database.migrate();
      ingestor = createIngestor({
        database, district, profiles, engine: createRuleEngine(defaultRuleSet(profiles)), mode: NORMAL_MODE, events: createEventBus(),
        env: { categories: DEFAULT_CATEGORIES, calendar: createCalendar(), routing: DEFAULT_ROUTING, workflow: DEFAULT_WORKFLOW },
        now: () => T0, logger: silentLogger(), batch,
      });
      await ingestor.seed();
    }

    // Batches of at most 256 (not the default), which the counts of commits below follow.
    beforeEach(() => start({ maxReadings: 256 }));
    afterEach(async () => {
      ingestor.close();
      await database.close();
      await drop();
    });

    /** Readings seq 1..n per point, interleaved across points as gateways would send them. */
    function send(n: number, value = (_seq: number) => 0.3): Promise<IngestResult>[] {
      const out: Promise<IngestResult>[] = [];
      for (let seq = 1; seq <= n; seq++) {
        for (const p of points) out.push(ingestor.ingest(p.gw, topic(p), reading(p.id, seq, T0 - 60_000 + seq * 1000, { level_m: value(seq) })));
      }
      return out;
    }

    const count = async (table: 'readings' | 'device_state' | 'cases'): Promise<number> =>
      Number((await database.db.selectFrom(table).select((eb) => eb.fn.countAll().as('n')).executeTakeFirstOrThrow()).n);

    it('stores 600 readings that arrive together in three transactions, and keeps each device\'s newest values', async () => {
      const before = database.writes().commits;
      const results = await Promise.all(send(30)); // 30 readings × 20 points
      expect(results.every((r) => r.status === 'stored')).toBe(true);
      expect(await count('readings')).toBe(600);
      // 600 readings in batches of at most 256: three commits, not six hundred.
      expect(database.writes().commits - before).toBe(3);
      const states = await database.db.selectFrom('device_state').select(['device', 'last_seq']).execute();
      expect(states).toHaveLength(DEVICES);
      expect(states.every((s) => Number(s.last_seq) === 30)).toBe(true);
    });

    it('answers a key sent twice in one batch as a duplicate, and one sent with other values as a conflict', async () => {
      const p = points[0];
      const body = reading(p.id, 7, T0 - 1000, { level_m: 0.3 });
      const [first, again, other] = await Promise.all([
        ingestor.ingest(p.gw, topic(p), body),
        ingestor.ingest(p.gw, topic(p), body),
        ingestor.ingest(p.gw, topic(p), reading(p.id, 7, T0 - 1000, { level_m: 0.4 })),
      ]);
      expect([first.status, again.status, other.status]).toEqual(['stored', 'duplicate', 'conflict']);
      expect(await count('readings')).toBe(1);
      expect(ingestor.stats()).toMatchObject({ stored: 1, duplicates: 1, conflicts: 1 });
    });

    it('opens one case per device when its breaches come in one batch, each seeing its reading stored', async () => {
      const results = await Promise.all(send(5, () => 0.9));
      const opened = results.flatMap((r) => (r.status === 'stored' ? r.cases.filter((c) => c.action === 'opened') : []));
      expect(opened).toHaveLength(DEVICES);
      expect(await count('cases')).toBe(DEVICES);
    });

    it('stores and settles the rest of a batch whose one reading violates a constraint, and fails that one with the reason', async () => {
      // A constraint only the 13th reading of the first point breaks (the test's own trigger).
      const bad = points[0].id;
      if (backend === 'sqlite') {
        await sql.raw(`create trigger refuse_13 before insert on readings when new.device = '${bad}' and new.seq = 13
          begin select raise(abort, 'reading 13 refused by the test trigger'); end`).execute(database.db);
      } else {
        await sql.raw(`create function refuse_13() returns trigger language plpgsql as $$ begin
          if new.device = '${bad}' and new.seq = 13 then raise exception 'reading 13 refused by the test trigger'; end if; return new; end $$`).execute(database.db);
        await sql.raw('create trigger refuse_13 before insert on readings for each row execute function refuse_13()').execute(database.db);
      }
      const before = database.writes();
      const results = await Promise.all(send(20)); // 400 readings: batches of 256 and 144
      const failed = results.filter((r) => r.status === 'failed');
      expect(failed).toHaveLength(1);
      expect(failed[0]).toMatchObject({ reason: 'store-failed', message: expect.stringContaining('reading 13 refused by the test trigger') });
      expect(results.filter((r) => r.status === 'stored')).toHaveLength(399);
      expect(await count('readings')).toBe(399);
      expect(await database.db.selectFrom('readings').select('seq').where('device', '=', bad).where('seq', '=', 13).execute()).toEqual([]);
      // The batch holding it rolled back once, then went one reading per transaction.
      expect(database.writes().rollbacks - before.rollbacks).toBe(2);
      expect(ingestor.stats()).toMatchObject({ stored: 399, failed: 1 });
      // Redelivered once the constraint is gone, it is stored.
      await sql.raw('drop trigger refuse_13' + (backend === 'postgres' ? ' on readings' : '')).execute(database.db);
      const p = points[0];
      expect((await ingestor.ingest(p.gw, topic(p), reading(p.id, 13, T0 - 60_000 + 13_000, { level_m: 0.3 }))).status).toBe('stored');
    });

    it('loses nothing while another connection holds the write lock for 200 ms', async () => {
      const { released } = backend === 'sqlite' ? await lockSqlite(file, 200) : await lockPostgres(url, 200);
      const t0 = performance.now();
      const results = await Promise.all(send(10));
      // Nothing could commit before the lock went.
      expect(performance.now() - t0).toBeGreaterThanOrEqual(150);
      await released;
      expect(results.filter((r) => r.status !== 'stored')).toEqual([]);
      expect(await count('readings')).toBe(200);
    });

    it('settles no reading before its batch is visible to another connection (what a kill -9 would leave)', async () => {
      const seen: boolean[] = [];
      if (backend === 'sqlite') {
        const other = new Sqlite(file, { readonly: true });
        const has = other.prepare('select 1 from readings where device = ? and seq = ?');
        // Checked synchronously as each promise settles: nothing can commit in between.
        await Promise.all(send(15).map((p, i) => p.then(() => seen.push(has.get(points[i % DEVICES].id, Math.floor(i / DEVICES) + 1) !== undefined))));
        other.close();
      } else {
        const other = new pg.Pool({ connectionString: url, max: 4 });
        // Asked as each promise settles: a reading settled before its commit would most likely be missing.
        await Promise.all(send(15).map((p, i) => p.then(async () => {
          const r = await other.query('select 1 from readings where device = $1 and seq = $2', [points[i % DEVICES].id, Math.floor(i / DEVICES) + 1]);
          seen.push(r.rowCount === 1);
        })));
        await other.end();
      }
      expect(seen).toHaveLength(300);
      expect(seen.every(Boolean)).toBe(true);
    });

    it.skipIf(backend !== 'postgres')('keeps room in the pages of the rows each batch updates in place (rollups, device states: fillfactor 70), so that their updates can be HOT', async () => {
      const r = await sql<{ relname: string; reloptions: string[] | null }>`select relname, reloptions from pg_class
        where relname in ('reading_rollups_1m', 'reading_rollups_1h', 'device_state', 'readings') order by relname`.execute(database.db);
      expect(r.rows.map((x) => [x.relname, x.reloptions])).toEqual([
        ['device_state', ['fillfactor=70']], ['reading_rollups_1h', ['fillfactor=70']], ['reading_rollups_1m', ['fillfactor=70']], ['readings', null],
      ]);
    });

    it.skipIf(backend !== 'sqlite')('checkpoints the WAL at 10,000 pages, not SQLite\'s 1,000, so that pages every batch rewrites are copied to the file less often', async () => {
      await database.ping();
      const r = await sql<{ wal_autocheckpoint: number }>`pragma wal_autocheckpoint`.execute(database.db);
      expect(r.rows).toEqual([{ wal_autocheckpoint: 10000 }]);
    });
  });
});

/** Another thread's connection takes the write lock and holds it `ms`; resolves once taken, with a promise of its release. */
async function lockSqlite(file: string, ms: number): Promise<{ released: Promise<void> }> {
  const major = Number(process.versions.node.split('.')[0]);
  const driver = createRequire(import.meta.url).resolve(major >= 22 ? 'better-sqlite3-napi' : 'better-sqlite3');
  const worker = new Worker(`
    const { parentPort, workerData } = require('node:worker_threads');
    const db = new (require(workerData.driver))(workerData.file);
    db.exec('begin immediate');
    parentPort.postMessage('locked');
    Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, workerData.ms);
    db.exec('commit');
    db.close();
  `, { eval: true, workerData: { driver, file, ms } });
  await new Promise<void>((resolve, reject) => { worker.once('message', () => resolve()); worker.once('error', reject); });
  return { released: new Promise<void>((resolve, reject) => { worker.once('exit', () => resolve()); worker.once('error', reject); }) };
}

async function lockPostgres(url: string, ms: number): Promise<{ released: Promise<void> }> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  await c.query('begin');
  await c.query('lock table readings in exclusive mode');
  return { released: new Promise<void>((resolve) => setTimeout(resolve, ms)).then(() => c.query('commit')).then(() => c.end()) };
}
