import { afterEach, describe, expect, it } from 'vitest';
import { buildCloud } from '../../cloud/app.ts';
import { parseConfig } from '../../lib/config.ts';
import { CloudServiceConfig } from '../../cli/config.ts';
import { openDatabase } from '../../cloud/db/database.ts';
import { createMigrator } from '../../cloud/db/migrations.ts';
import { readingBuckets } from '../../cloud/db/reading-buckets.ts';
import { rollupBuckets } from '../../cloud/db/rollup-buckets.ts';
import { BACKFILL_PAGE } from '../../cloud/db/rollups-migration.ts';
import { ROLLUP_LEVELS } from '../../cloud/db/rollups.ts';
import { BACKENDS, district, freshDatabase, profiles, type Backend } from './fixtures.ts';

/**
 * Migration 0008 rolls up the readings an installed cloud already holds (in pages of BACKFILL_PAGE
 * rows): afterwards the minute and hour rollups equal a direct aggregate of those raw rows. And a
 * retention that keeps a finer level longer than a coarser one is refused before anything opens.
 */

const T0 = Date.parse('2026-10-01T00:00:00Z');
const DEVICES = ['XZ-WL-001', 'XZ-WL-002'];
const N = Math.floor(BACKFILL_PAGE * 1.3);

describe.each(BACKENDS)('rollup backfill on $backend', ({ backend, skip }: { backend: Backend; skip: boolean }) => {
  let drop: (() => Promise<void>) | undefined;
  afterEach(async () => { await drop?.(); drop = undefined; });

  it.skipIf(skip)('rolls up the raw rows stored before migration 0008, across pages, as a direct aggregate says', async () => {
    const fresh = await freshDatabase(backend);
    drop = fresh.drop;
    const db = openDatabase(fresh.db);
    try {
      const { error } = await createMigrator(db.db).migrateTo('0007_casework');
      if (error) throw error;
      const rows = Array.from({ length: N }, (_, i) => ({
        gateway: 'gw-xz-jida', stream: '', device: DEVICES[i % 2], seq: i + 1, ts: T0 + i * 700, received_at: T0 + i * 700,
        // A string now and then is not rolled up, as the raw aggregate leaves it out.
        values_json: JSON.stringify({ level_m: i % 31 === 0 ? 'n/a' : Math.round(Math.cos(i / 900) * 1000) / 1000, battery_pct: 90 - (i % 7) }),
        quality: 'good', historical: 0,
      }));
      for (let i = 0; i < rows.length; i += 1000) await db.db.insertInto('readings').values(rows.slice(i, i + 1000)).execute();
      await db.migrate();
      const to = T0 + N * 700 + 3_600_000;
      for (const device of DEVICES) {
        for (const level of ROLLUP_LEVELS) {
          const q = { device, from: T0, to, stepMs: level.ms * 3, points: ['level_m', 'battery_pct'] };
          const [rolled, direct] = [await rollupBuckets(db, level, q), await readingBuckets(db, { ...q, sliceMs: to - T0 })];
          for (const p of q.points) {
            expect(rolled[p].map(({ mean: _m, ...b }) => b)).toEqual(direct[p].map(({ mean: _m, ...b }) => b));
            rolled[p].forEach((b, i) => expect(b.mean).toBeCloseTo(direct[p][i].mean, 9));
          }
          expect(rolled.level_m.reduce((a, b) => a + b.count, 0)).toBe(rows.filter((r) => r.device === device && !r.values_json.includes('n/a')).length);
        }
      }
    } finally {
      await db.close();
    }
  }, 120_000);
});

describe('retention settings', () => {
  it('refuses minute rollups kept shorter than raw readings, or a non-positive period, naming the key', async () => {
    const db = { kind: 'sqlite' as const, file: '/nonexistent/never-opened.db' };
    await expect(buildCloud({ db, district, profiles, retention: { rawDays: 60, minuteDays: 30 } }))
      .rejects.toMatchObject({ code: 'CS_CLOUD_CONFIG_INVALID', message: expect.stringMatching(/minuteDays \(30\) is shorter than rawDays \(60\)/) });
    await expect(buildCloud({ db, district, profiles, retention: { hourDays: 0 } }))
      .rejects.toMatchObject({ code: 'CS_CLOUD_CONFIG_INVALID', message: expect.stringMatching(/retention\.hourDays must be a positive number/) });
  });

  it('reads retention.rawDays, minuteDays and hourDays from the cloud config file and refuses other keys or non-integers', () => {
    const base = { district: 'd.yaml', mqtt: { url: 'mqtt://x:1883', username: 'cloud', password: 'p' } };
    const cfg = parseConfig(JSON.stringify({ ...base, retention: { rawDays: 14, minuteDays: 60, hourDays: 365 } }), CloudServiceConfig, 'cloud.yaml');
    expect(cfg.retention).toEqual({ rawDays: 14, minuteDays: 60, hourDays: 365 });
    expect(() => parseConfig(JSON.stringify({ ...base, retention: { rawDays: 1.5 } }), CloudServiceConfig, 'cloud.yaml')).toThrow(/rawDays/);
    expect(() => parseConfig(JSON.stringify({ ...base, retention: { days: 3 } }), CloudServiceConfig, 'cloud.yaml')).toThrow(/retention/);
  });
});
