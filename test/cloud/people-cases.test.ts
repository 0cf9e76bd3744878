import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { topics } from '../../lib/topics.ts';
import { buildCloud, type Cloud } from '../../cloud/app.ts';
import { openDatabase } from '../../cloud/db/database.ts';
import type { DbOptions } from '../../cloud/db/database.ts';
import { BACKENDS, district, freshDatabase, profiles, reading, type Backend } from './fixtures.ts';

/**
 * Cases from people (issue 13), on SQLite and PostgreSQL: every case says its source, category,
 * reporter, self-correction and district; the inspector role sees only the cases it registered.
 */

const T0 = Date.parse('2026-11-25T02:00:00Z');
const WL = district.devices.find((d) => d.id === 'XZ-WL-001')!;
const GW = 'gw-xz-jida';

describe.each(BACKENDS)('cases from people on $backend', ({ backend, skip }: { backend: Backend; skip: boolean }) => {
  describe.skipIf(skip)(backend, () => {
    let cloud: Cloud;
    let dbOpts: DbOptions;
    let drop: () => Promise<void>;
    const clock = T0;
    const tok: Record<string, string> = {};

    beforeAll(async () => {
      const fresh = await freshDatabase(backend);
      dbOpts = fresh.db;
      drop = fresh.drop;
      cloud = await buildCloud({ db: fresh.db, district, profiles, now: () => clock, escalation: false });
      await cloud.start();
      for (const r of ['operator', 'admin', 'inspector'] as const) tok[r] = await cloud.tokens.create(r);
    });

    afterAll(async () => {
      await cloud?.stop();
      await drop?.();
    });

    const get = (url: string, token: string) => cloud.app.inject({ url, headers: { authorization: `Bearer ${token}` } });

    it('a sensor case says source sensor and its district from the component code', async () => {
      const r = await cloud.ingest(GW, topics.up(GW, WL.id), reading(WL.id, 1, clock, { level_m: 0.95, battery_pct: 90 }));
      expect(r.status).toBe('stored');
      const list = (await get('/api/cases', tok.operator)).json() as { items: Record<string, unknown>[] };
      expect(list.items).toHaveLength(1);
      expect(list.items[0]).toMatchObject({ source: 'sensor', category: null, reporter: null, selfCorrected: false, district: WL.componentCode.slice(0, 6) });
      expect((await get('/api/cases?source=sensor&district=440402', tok.operator)).json().items).toHaveLength(1);
      expect((await get('/api/cases?source=inspector', tok.operator)).json().items).toHaveLength(0);
    });

    it('an inspector sees neither others\' cases nor the alarms and live events', async () => {
      const id = ((await get('/api/cases', tok.operator)).json().items[0] as { id: string }).id;
      expect((await get('/api/cases', tok.inspector)).json().items).toEqual([]);
      expect((await get(`/api/cases/${id}`, tok.inspector)).statusCode).toBe(404);
      expect((await get('/api/alarms', tok.inspector)).statusCode).toBe(403);
      expect((await get('/api/events', tok.inspector)).statusCode).toBe(403);
      expect((await get('/api/devices', tok.inspector)).statusCode).toBe(200);
    });

    it('one open case per asset and hazard holds for sensor cases only', async () => {
      const db = openDatabase(dbOpts);
      try {
        const first = await db.db.selectFrom('cases').selectAll().executeTakeFirstOrThrow();
        await expect(db.write((trx) => trx.insertInto('cases').values({ ...first, id: 'C-TEST-S' }).execute())).rejects.toThrow();
        await db.write((trx) => trx.insertInto('cases').values({ ...first, id: 'C-TEST-P', source: 'inspector', reporter: 'user:li' }).execute());
        expect(await db.db.selectFrom('cases').select('id').execute()).toHaveLength(2);
      } finally {
        await db.close();
      }
    });
  });
});
