import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sql } from 'kysely';
import { buildCloud, type Cloud, type DbOptions } from '../../cloud/app.ts';
import { openDatabase } from '../../cloud/db/database.ts';
import { bucketStatement, readingBuckets } from '../../cloud/db/reading-buckets.ts';
import { insertReadings } from '../../cloud/db/reading-store.ts';
import { recordRollups, ROLLUP_LEVELS } from '../../cloud/db/rollups.ts';
import { rollupStatement } from '../../cloud/db/rollup-buckets.ts';
import { BACKENDS, district, freshDatabase, profiles, type Backend } from './fixtures.ts';

/**
 * A device's history in buckets (GET /api/devices/:id/readings?buckets|step): the database's
 * min, max, mean and count per numeric point equal a direct computation over the raw rows, on
 * SQLite and PostgreSQL; the query walks the (device, ts) index (the rollups: their primary key); bad spans and caps are 400s.
 */

const T0 = Date.parse('2026-11-01T00:00:00Z');
const N = 1500;
const DEVICE = 'XZ-WL-001';

/** Seeded values: level_m every row (some as a string, which is not aggregated), battery_pct on every third. */
function rows() {
  let x = 12345;
  const rnd = () => ((x = (x * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
  return Array.from({ length: N }, (_, i) => {
    const values: Record<string, unknown> = { level_m: Math.round(rnd() * 1000) / 1000 };
    if (i % 97 === 0) values.level_m = 'n/a';
    if (i % 3 === 0) values.battery_pct = Math.round(rnd() * 100);
    // Irregular spacing: 1 to 4 s.
    return { seq: i + 1, ts: T0 + i * 2500 + Math.floor(rnd() * 1000), values };
  });
}

describe.each(BACKENDS)('history buckets on $backend', ({ backend, skip }: { backend: Backend; skip: boolean }) => {
  describe.skipIf(skip)(backend, () => {
    let cloud: Cloud;
    let drop: () => Promise<void>;
    let dbOpts: DbOptions;
    let base: string;
    let token: string;
    const data = rows();

    const get = async (path: string) => {
      const r = await fetch(`${base}${path}`, { headers: { authorization: `Bearer ${token}` } });
      return { status: r.status, body: await r.json() as any };
    };

    beforeAll(async () => {
      const fresh = await freshDatabase(backend);
      drop = fresh.drop;
      dbOpts = fresh.db;
      cloud = await buildCloud({ db: fresh.db, district, profiles, now: () => T0 + 86_400_000, escalation: false, emergency: false });
      await cloud.start();
      token = await cloud.tokens.create('operator');
      const db = openDatabase(fresh.db);
      try {
        // Through the store's functions, as a batch stores them: raw rows and their rollups.
        await db.write(async (trx) => {
          const stored = data.map((r) => ({
            gateway: 'gw-xz-jida', stream: '', device: DEVICE, seq: r.seq, ts: r.ts, received_at: r.ts,
            values_json: JSON.stringify(r.values), quality: 'good', historical: 0,
          }));
          await insertReadings(db, trx, stored);
          await recordRollups(db, trx, data.map((r) => ({ device: DEVICE, ts: r.ts, values: r.values })));
        });
      } finally {
        await db.close();
      }
      await cloud.app.listen({ port: 0, host: '127.0.0.1' });
      base = `http://127.0.0.1:${(cloud.app.server.address() as AddressInfo).port}`;
    });

    afterAll(async () => {
      await cloud?.stop();
      await drop?.();
    });

    /** The buckets computed here from the raw rows, the way the API must. */
    function expected(from: number, to: number, stepMs: number, point: string) {
      const byBucket = new Map<number, number[]>();
      for (const r of data) {
        const v = r.values[point];
        if (r.ts < from || r.ts >= to || typeof v !== 'number') continue;
        const b = Math.floor((r.ts - from) / stepMs);
        byBucket.set(b, [...(byBucket.get(b) ?? []), v]);
      }
      return [...byBucket].sort((a, b) => a[0] - b[0]).map(([b, vs]) => ({
        t: new Date(from + b * stepMs).toISOString(), min: Math.min(...vs), max: Math.max(...vs), mean: vs.reduce((a, v) => a + v, 0) / vs.length, count: vs.length,
      }));
    }

    function expectSeries(actual: { t: string; min: number; max: number; mean: number; count: number }[], want: ReturnType<typeof expected>) {
      expect(actual.map(({ mean: _m, ...rest }) => rest)).toEqual(want.map(({ mean: _m, ...rest }) => rest));
      actual.forEach((b, i) => expect(b.mean).toBeCloseTo(want[i].mean, 9));
    }

    it('aggregates each numeric point per bucket exactly as the raw rows say (buckets=N, a step under a minute: raw rows)', async () => {
      const from = T0 + 10_000;
      const to = T0 + 3_000_000;
      const r = await get(`/api/devices/${DEVICE}/readings?from=${new Date(from).toISOString()}&to=${new Date(to).toISOString()}&buckets=61`);
      expect(r.status).toBe(200);
      const stepMs = Math.ceil((to - from) / 61);
      expect(stepMs).toBeLessThan(60_000);
      expect(r.body).toMatchObject({ device: DEVICE, from: new Date(from).toISOString(), to: new Date(to).toISOString(), stepMs });
      expect(Object.keys(r.body.series).sort()).toEqual(['battery_pct', 'level_m']);
      expectSeries(r.body.series.level_m, expected(from, to, stepMs, 'level_m'));
      expectSeries(r.body.series.battery_pct, expected(from, to, stepMs, 'battery_pct'));
      // The string value in a numeric point is left out, not counted.
      expect(r.body.series.level_m.reduce((a: number, b: { count: number }) => a + b.count, 0)).toBe(expected(from, to, stepMs, 'level_m').reduce((a, b) => a + b.count, 0));
    });

    it('takes a step in milliseconds instead (a minute: from the minute rollups), and keeps the raw answer without either', async () => {
      const from = T0;
      const to = T0 + N * 2500;
      const r = await get(`/api/devices/${DEVICE}/readings?from=${new Date(from).toISOString()}&to=${new Date(to).toISOString()}&step=60000`);
      expect(r.status).toBe(200);
      expect(r.body.stepMs).toBe(60_000);
      expectSeries(r.body.series.level_m, expected(from, to, 60_000, 'level_m'));
      const raw = await get(`/api/devices/${DEVICE}/readings?limit=3`);
      expect(raw.body.items.map((i: { seq: number }) => i.seq)).toEqual([N, N - 1, N - 2]);
      expect(raw.body.series).toBeUndefined();
    });

    it('refuses a reversed span, too many buckets, both buckets and step, and an unknown device', async () => {
      const a = new Date(T0).toISOString();
      const b = new Date(T0 + 3_600_000).toISOString();
      for (const q of [`from=${b}&to=${a}&buckets=10`, `from=${a}&to=${b}&buckets=2001`, `from=${a}&to=${b}&step=1`, `from=${a}&to=${b}&buckets=10&step=1000`, `from=${a}&to=${a}&buckets=10`]) {
        const r = await get(`/api/devices/${DEVICE}/readings?${q}`);
        expect(r.status, q).toBe(400);
        expect(r.body.code, q).toBe('CS_CLOUD_BAD_QUERY');
      }
      expect((await get(`/api/devices/${DEVICE}/readings?from=${a}&to=${b}&buckets=2001`)).body.message).toMatch(/above the cap of 2000/);
      const unknown = await get(`/api/devices/XZ-NOPE/readings?buckets=10`);
      expect(unknown.status).toBe(404);
      expect(unknown.body.code).toBe('CS_CLOUD_DEVICE_NOT_FOUND');
    });

    it('reads a long span in slices of whole buckets with the same answer as one statement', async () => {
      const db = openDatabase(dbOpts);
      try {
        const q = { device: DEVICE, from: T0 + 1234, to: T0 + N * 2500, stepMs: 45_000, points: ['level_m', 'battery_pct'] };
        const whole = await readingBuckets(db, { ...q, sliceMs: q.to - q.from });
        const sliced = await readingBuckets(db, { ...q, sliceMs: 7 * 45_000 + 5 });
        expect(sliced).toEqual(whole);
        expect(whole.level_m.map((b) => new Date(b.t).toISOString())).toEqual(expected(q.from, q.to, q.stepMs, 'level_m').map((b) => b.t));
      } finally {
        await db.close();
      }
    });

    it.skipIf(backend !== 'sqlite')('walks the readings_device_ts index, not the whole table (SQLite query plan)', async () => {
      const db = openDatabase(dbOpts);
      try {
        const stmt = bucketStatement('sqlite', { device: DEVICE, from: T0, to: T0 + 1000, stepMs: 10, points: ['level_m', 'battery_pct'] });
        const plan = (await sql<{ detail: string }>`explain query plan ${stmt}`.execute(db.db)).rows.map((r) => r.detail).join('\n');
        expect(plan).toMatch(/SEARCH r USING INDEX readings_device_ts \(device=\? AND ts>\? AND ts<\?\)/);
        expect(plan).not.toMatch(/SCAN (r|readings)\b/);
      } finally {
        await db.close();
      }
    });

    it.skipIf(backend !== 'sqlite')('walks the rollups\' primary key (device, bucket, point), not a scan or another index (SQLite query plan)', async () => {
      const db = openDatabase(dbOpts);
      try {
        for (const level of ROLLUP_LEVELS) {
          const stmt = rollupStatement('sqlite', level, { device: DEVICE, from: T0, to: T0 + 100 * level.ms, stepMs: level.ms * 2, points: ['level_m', 'battery_pct'] });
          const plan = (await sql<{ detail: string }>`explain query plan ${stmt}`.execute(db.db)).rows.map((r) => r.detail).join('\n');
          expect(plan).toMatch(new RegExp(`SEARCH ${level.table} USING PRIMARY KEY \\(device=\\? AND bucket>\\? AND bucket<\\?\\)`));
          expect(plan).not.toMatch(/SCAN reading_rollups|USING INDEX/);
        }
      } finally {
        await db.close();
      }
    });
  });
});
