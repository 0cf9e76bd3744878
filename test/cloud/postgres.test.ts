import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { topics } from '../../lib/topics.ts';
import { buildCloud, type Cloud } from '../../cloud/app.ts';
import { openDatabase } from '../../cloud/db/database.ts';
import { district, freshDatabase, pgAvailable, profiles } from './fixtures.ts';

/**
 * PostgreSQL specifics beyond the suites that run on both backends: many readings interleaved
 * across two instances, a gap-free history, bigint timestamps parsed back to numbers.
 * Skipped with a visible note (fixtures.ts) when no server answers at CS_TEST_PG_URL.
 */
describe.skipIf(!pgAvailable)('PostgreSQL', () => {
  let url: string;
  let drop: () => Promise<void>;
  const clouds: Cloud[] = [];

  beforeAll(async () => {
    const fresh = await freshDatabase('postgres');
    url = (fresh.db as { url: string }).url;
    drop = fresh.drop;
  });

  afterAll(async () => {
    for (const c of clouds) await c.stop();
    await drop?.();
  });

  it('migrates, stores readings idempotently and keeps one open case across two concurrent instances', async () => {
    for (let i = 0; i < 2; i++) {
      const c = await buildCloud({ db: { kind: 'postgres', url }, district, profiles });
      clouds.push(c);
      await c.start();
    }
    const t = topics.up('gw-xz-jida', 'XZ-WL-001');
    const body = (seq: number) => Buffer.from(JSON.stringify({ seq, ts: new Date(Date.UTC(2026, 10, 25, 2, 0, seq)).toISOString(), device: 'XZ-WL-001', values: { level_m: 0.9 } }));
    const results = await Promise.all(Array.from({ length: 30 }, (_, i) => clouds[i % 2].ingest('gw-xz-jida', t, body(i + 1))));
    expect(results.map((r) => r.status)).toEqual(Array(30).fill('stored'));
    expect((await clouds[0].ingest('gw-xz-jida', t, body(1))).status).toBe('duplicate');

    const db = openDatabase({ kind: 'postgres', url });
    try {
      const cases = await db.db.selectFrom('cases').selectAll().execute();
      expect(cases).toHaveLength(1);
      expect(cases[0]).toMatchObject({ breach_count: 30, state: 'dispatched', unit: 'xz-drainage' });
      expect(typeof cases[0].opened_at).toBe('number');
      const history = await db.db.selectFrom('case_history').select(['seq', 'action']).where('case_id', '=', cases[0].id).orderBy('seq').execute();
      // Gap-free across the two instances, and changes only: 30 samples of one breach are not 30 rows.
      expect(history.map((h) => h.seq)).toEqual(Array.from({ length: history.length }, (_, i) => i + 1));
      expect(history.map((h) => h.action)).toEqual(['register', 'dispatch']);
      expect(await db.db.selectFrom('readings').select('seq').execute()).toHaveLength(30);
    } finally {
      await db.close();
    }

    const token = await clouds[0].tokens.create('crew', 'xz-drainage');
    const r = await clouds[1].app.inject({ url: '/api/cases', headers: { authorization: `Bearer ${token}` } });
    expect(r.json().items).toMatchObject([{ device: 'XZ-WL-001', breachCount: 30, emergency: true }]);
  });
});
