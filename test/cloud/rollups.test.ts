import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildCloud, type Cloud } from '../../cloud/app.ts';
import { openDatabase, type Database } from '../../cloud/db/database.ts';
import { readingBuckets, type BucketStat } from '../../cloud/db/reading-buckets.ts';
import { insertReadings, type ReadingRow } from '../../cloud/db/reading-store.ts';
import { recordRollups, type RolledReading } from '../../cloud/db/rollups.ts';
import { BACKENDS, district, freshDatabase, profiles, reading, type Backend } from './fixtures.ts';

/**
 * Rollups and retention of readings (docs/architecture.md#rollups): a month of readings of one device every
 * 10 s (259,200; every minute bucket holds six), the last ten minutes through the real ingest path (and sent
 * twice), the rest through the same store functions in big batches; a month at 500 buckets answers from the
 * hour rollups with the same min, max, mean and count per bucket as a direct SQL aggregate over the raw rows;
 * after the retention timer the raw rows older than the retention are gone and the rollups still answer.
 * The whole month on SQLite and on PostgreSQL alike.
 */

const DAYS = 30;
/** One reading every STEP ms. */
const STEP = 10_000;
const DAY = 86_400_000;
const T0 = Date.parse('2026-09-01T00:00:00Z');
const DEVICE = 'XZ-WL-001';
const GATEWAY = 'gw-xz-jida';
const POINTS = ['level_m', 'battery_pct'];
/** The last ten minutes of the month go through `cloud.ingest`. */
const INGESTED = 600_000 / STEP;
const BULK_BATCH = 20_000;

/** A tide-like level (below the first tier, so no case opens) and a slowly draining battery; every 50th level of the bulk a string (the intake refuses one). */
function values(i: number, TOTAL: number): Record<string, unknown> {
  const level = Math.round((0.3 + 0.2 * Math.sin((i * STEP) / 22_357_000) + ((i * 7919) % 100) / 2000) * 1000) / 1000;
  return { level_m: i % 50 === 7 && i < TOTAL - INGESTED ? 'n/a' : level, battery_pct: 100 - Math.floor((i / TOTAL) * 30) };
}

const close = (a: BucketStat[], b: BucketStat[]) => {
  expect(a.map(({ mean: _m, ...rest }) => rest)).toEqual(b.map(({ mean: _m, ...rest }) => rest));
  a.forEach((x, i) => expect(Math.abs(x.mean - b[i].mean)).toBeLessThanOrEqual(1e-9 * Math.max(1, Math.abs(b[i].mean))));
};

describe.each(BACKENDS)('rollups and retention on $backend', ({ backend, skip }: { backend: Backend; skip: boolean }) => {
  describe.skipIf(skip)(backend, () => {
    /** Readings in the month. */
    const TOTAL = DAYS * DAY / STEP;
    let cloud: Cloud;
    let drop: () => Promise<void>;
    let db: Database;
    let base: string;
    let token: string;
    const end = T0 + TOTAL * STEP;
    let clock = end;
    // Nothing is beyond it until the clock moves on (the timer runs from the start).
    const RAW_DAYS = DAYS + 1;

    const get = async (path: string) => {
      const r = await fetch(`${base}${path}`, { headers: { authorization: `Bearer ${token}` } });
      return { status: r.status, body: await r.json() as any };
    };
    const history = (from: number, to: number, q: string) =>
      get(`/api/devices/${DEVICE}/readings?from=${new Date(from).toISOString()}&to=${new Date(to).toISOString()}&${q}`);
    /** The answer's series as numbers (t in ms), comparable with readingBuckets over raw rows. */
    const numeric = (series: Record<string, { t: string }[]>) =>
      Object.fromEntries(Object.entries(series).map(([p, l]) => [p, l.map((b) => ({ ...b, t: Date.parse(b.t) }))])) as Record<string, BucketStat[]>;
    const rawCount = async (before: number) =>
      Number((await db.db.selectFrom('readings').select((e) => e.fn.countAll().as('n')).where('device', '=', DEVICE).where('ts', '<', before).executeTakeFirstOrThrow()).n);

    beforeAll(async () => {
      const fresh = await freshDatabase(backend);
      drop = fresh.drop;
      cloud = await buildCloud({
        db: fresh.db, district, profiles, now: () => clock, escalation: false, emergency: false,
        retention: { rawDays: RAW_DAYS, pruneEveryMs: 100 },
      });
      await cloud.start();
      token = await cloud.tokens.create('operator');
      db = openDatabase(fresh.db);
      // The bulk: the same store functions as a batch uses, 20,000 readings a transaction.
      for (let start = 0; start < TOTAL - INGESTED; start += BULK_BATCH) {
        const stop = Math.min(TOTAL - INGESTED, start + BULK_BATCH);
        const rows: ReadingRow[] = [];
        const rolled: RolledReading[] = [];
        for (let i = start; i < stop; i++) {
          const ts = T0 + i * STEP;
          const v = values(i, TOTAL);
          rows.push({ gateway: GATEWAY, stream: 'bulk', seq: i + 1, device: DEVICE, ts, received_at: ts + 40, values_json: JSON.stringify(v), quality: 'good', historical: 0 });
          rolled.push({ device: DEVICE, ts, values: v });
        }
        await db.write(async (trx) => {
          await insertReadings(db, trx, rows);
          await recordRollups(db, trx, rolled);
        });
      }
      await cloud.app.listen({ port: 0, host: '127.0.0.1' });
      base = `http://127.0.0.1:${(cloud.app.server.address() as AddressInfo).port}`;
    }, 600_000);

    afterAll(async () => {
      await cloud?.stop();
      await db?.close();
      await drop?.();
    });

    it('maintains the rollups from readings ingested through the pipeline, and a resent reading does not count twice', async () => {
      const send = () => Promise.all(Array.from({ length: INGESTED }, (_, k) => {
        const i = TOTAL - INGESTED + k;
        return cloud.ingest(GATEWAY, `cs/v1/${GATEWAY}/up/${DEVICE}`, reading(DEVICE, i + 1, T0 + i * STEP, values(i, TOTAL)));
      }));
      expect(new Set((await send()).map((r) => r.status))).toEqual(new Set(['stored']));
      expect(new Set((await send()).map((r) => r.status))).toEqual(new Set(['duplicate']));
      const lastMinute = await db.db.selectFrom('reading_rollups_1m').selectAll()
        .where('device', '=', DEVICE).where('point', '=', 'battery_pct').where('bucket', '=', end - 60_000).executeTakeFirstOrThrow();
      expect(Number(lastMinute.count)).toBe(60_000 / STEP);
      expect(Number(lastMinute.last_ts)).toBe(end - STEP);
    }, 60_000);

    it('answers the whole span at 500 buckets from the rollups with the raw rows\' min, max, mean and count per bucket', async () => {
      const r = await history(T0, end, 'buckets=500');
      expect(r.status).toBe(200);
      // A month asks 86.4 min: rounded up to whole hours (hour rollups); under an hour, to whole minutes; and said so.
      const asked = TOTAL * STEP / 500;
      const level = asked >= 3_600_000 ? 3_600_000 : 60_000;
      expect(r.body).toMatchObject({ device: DEVICE, from: new Date(T0).toISOString(), to: new Date(end).toISOString(), stepMs: Math.ceil(asked / level) * level });
      // In the store's slices (yielding between them): one statement over a month would hold the event loop for seconds and
      // the server's idle keep-alive sockets would close under the next request.
      const direct = await readingBuckets(db, { device: DEVICE, from: T0, to: end, stepMs: r.body.stepMs, points: POINTS });
      const got = numeric(r.body.series);
      expect(got.level_m.reduce((a, b) => a + b.count, 0)).toBe(TOTAL - Math.ceil((TOTAL - INGESTED - 7) / 50));
      close(got.level_m, direct.level_m);
      close(got.battery_pct, direct.battery_pct);
      // Hour rollups, whatever the span.
      const hourly = await history(T0, end, 'step=3600000');
      const directHourly = await readingBuckets(db, { device: DEVICE, from: T0, to: end, stepMs: 3_600_000, points: POINTS });
      close(numeric(hourly.body.series).level_m, directHourly.level_m);
    }, 180_000);

    it('answers a step under an hour from the minute rollups, aligned to the minute, as the raw rows do', async () => {
      const from = end - DAY + 12_345;
      const r = await history(from, end, 'step=90000');
      expect(r.body.stepMs).toBe(120_000);
      const alignedFrom = Math.floor(from / 60_000) * 60_000;
      expect(r.body.from).toBe(new Date(alignedFrom).toISOString());
      const direct = await readingBuckets(db, { device: DEVICE, from: alignedFrom, to: end, stepMs: 120_000, points: POINTS });
      close(numeric(r.body.series).level_m, direct.level_m);
      // A `to` inside a minute is kept: the rollups up to its minute, the raw rows after.
      const to = end - 30_500;
      const cut = await history(from, to, 'step=90000');
      expect(cut.body.to).toBe(new Date(to).toISOString());
      const directCut = await readingBuckets(db, { device: DEVICE, from: alignedFrom, to, stepMs: 120_000, points: POINTS });
      close(numeric(cut.body.series).level_m, directCut.level_m);
      close(numeric(cut.body.series).battery_pct, directCut.battery_pct);
    }, 60_000);

    it('prunes raw rows older than the retention on its timer; the rollups remain and answer as before', async () => {
      const before = await history(T0, end, 'buckets=500');
      const firstDayDirect = await readingBuckets(db, { device: DEVICE, from: T0, to: T0 + DAY, stepMs: 600_000, points: POINTS });
      expect(await rawCount(T0 + DAY)).toBe(DAY / STEP);
      // Three days on: the first two days are beyond the raw retention (RAW_DAYS before now).
      clock = end + 3 * DAY;
      const cutoff = clock - RAW_DAYS * DAY;
      await expect.poll(() => rawCount(cutoff), { timeout: 120_000, interval: 200 }).toBe(0);
      expect(await rawCount(cutoff + 60_000)).toBe(60_000 / STEP);
      const after = await history(T0, end, 'buckets=500');
      expect(after.body).toEqual(before.body);
      // The first day at ten minutes: raw rows are gone, the minute rollups give the same answer.
      const firstDay = await history(T0, T0 + DAY, 'step=600000');
      expect(firstDay.body.stepMs).toBe(600_000);
      close(numeric(firstDay.body.series).level_m, firstDayDirect.level_m);
      close(numeric(firstDay.body.series).battery_pct, firstDayDirect.battery_pct);
      // Under a minute but beyond the raw retention: the minute rollups, the step rounded up.
      expect((await history(T0, T0 + 3_600_000, 'step=10000')).body.stepMs).toBe(60_000);
    }, 180_000);
  });
});
