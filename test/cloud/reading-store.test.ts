import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openDatabase, type Database } from '../../cloud/db/database.ts';
import { arrayLiteral, prepared } from '../../cloud/db/prepared.ts';
import { insertReadings, priorReadings, upsertDeviceStates, type ReadingRow } from '../../cloud/db/reading-store.ts';
import { recordRollups } from '../../cloud/db/rollups.ts';
import { BACKENDS, freshDatabase, type Backend } from './fixtures.ts';

/**
 * The batch's statements (cloud/db/reading-store.ts, rollups.ts; docs/architecture.md#ingest) called
 * directly: on PostgreSQL one array per column through unnest, as named prepared statements.
 */

/** Text that an array literal must quote and escape, or that PostgreSQL could read as something else. */
const ODD = ['a"b', 'back\\slash', 'comma,brace{}', 'NULL', '', ' lead and trail ', 'line\nbreak\ttab', '中文 ü ✓', '\\"', '{"x":[1,2]}', 'emoji 😀'];

const row = (over: Partial<ReadingRow>): ReadingRow => ({
  gateway: 'gw-1', stream: 's', seq: 1, device: 'd-1', ts: 1000, received_at: 5000, values_json: '{"v":1}', quality: 'good', historical: 0, ...over,
});

describe.each(BACKENDS)('reading store on $backend', ({ backend, skip }: { backend: Backend; skip: boolean }) => {
  describe.skipIf(skip)(backend, () => {
    let database: Database;
    let drop: () => Promise<void>;

    beforeAll(async () => {
      const fresh = await freshDatabase(backend as Backend);
      drop = fresh.drop;
      database = openDatabase(fresh.db);
      await database.migrate();
    });
    afterAll(async () => {
      await database.close();
      await drop();
    });

    it('stores a key twice in one batch once, from its first row, and finds a redelivered one stored', async () => {
      await database.write((trx) => insertReadings(database, trx, [row({ seq: 1, values_json: '{"v":1}' })]));
      const batch = [
        row({ seq: 3, values_json: '{"v":3}' }),
        row({ seq: 2, values_json: '{"v":2}' }),
        row({ seq: 1, values_json: '{"v":99}' }), // redelivered with other values
        row({ seq: 2, values_json: '{"v":22}' }), // the same key later in the batch
        row({ seq: 2, device: 'd-2', values_json: '{"v":4}' }),
      ];
      const { stored, priors } = await database.write(async (trx) => {
        const s = await insertReadings(database, trx, batch);
        return { stored: s, priors: await priorReadings(database, trx, batch.filter((_, i) => !s[i])) };
      });
      expect(stored).toEqual([true, true, false, false, true]);
      expect(priors.map((p) => p.values_json)).toEqual(['{"v":1}', '{"v":2}']);
      const rows = await database.db.selectFrom('readings').select(['device', 'seq', 'values_json']).orderBy('device').orderBy('seq').execute();
      expect(rows.map((r) => [r.device, Number(r.seq), r.values_json])).toEqual([
        ['d-1', 1, '{"v":1}'], ['d-1', 2, '{"v":2}'], ['d-1', 3, '{"v":3}'], ['d-2', 2, '{"v":4}'],
      ]);
    });

    it('round-trips text with quotes, backslashes, commas, braces, "NULL" and line breaks in every text column', async () => {
      const rows = ODD.map((s, i) => row({
        gateway: `gw${s}`, stream: s, device: `dev${s}`, seq: 100 + i, values_json: JSON.stringify({ [s]: i + 0.5, text: s }), quality: s,
      }));
      const stored = await database.write(async (trx) => {
        const out = await insertReadings(database, trx, rows);
        await upsertDeviceStates(database, trx, rows.map((r) => ({
          device: r.device, gateway: r.gateway, last_seq: r.seq, last_ts: r.ts, last_values: r.values_json, last_quality: r.quality, last_seen: r.received_at,
        })));
        await recordRollups(database, trx, rows.map((r) => ({ device: r.device, ts: r.ts, values: JSON.parse(r.values_json) })));
        return out;
      });
      expect(stored).toEqual(rows.map(() => true));
      const back = await database.db.selectFrom('readings').selectAll().where('seq', '>=', 100).orderBy('seq').execute();
      expect(back.map((r) => [r.gateway, r.stream, r.device, r.values_json, r.quality])).toEqual(rows.map((r) => [r.gateway, r.stream, r.device, r.values_json, r.quality]));
      const states = await database.db.selectFrom('device_state').select(['device', 'gateway', 'last_values', 'last_quality']).where('device', 'like', 'dev%').execute();
      expect(new Set(states.map((s) => JSON.stringify([s.device, s.gateway, s.last_values, s.last_quality]))))
        .toEqual(new Set(rows.map((r) => JSON.stringify([r.device, r.gateway, r.values_json, r.quality]))));
      const points = await database.db.selectFrom('reading_rollups_1m').select(['device', 'point', 'sum']).where('device', 'like', 'dev%').execute();
      expect(new Set(points.map((p) => `${p.device}|${p.point}|${p.sum}`))).toEqual(new Set(ODD.map((s, i) => `dev${s}|${s}|${i + 0.5}`)));
    });

    it('moves a device state only forward in measurement time, and adds to a rollup bucket rather than replacing it', async () => {
      const state = (ts: number, v: string) => ({ device: 'd-state', gateway: 'gw-1', last_seq: ts, last_ts: ts, last_values: v, last_quality: 'good', last_seen: ts });
      await database.write((trx) => upsertDeviceStates(database, trx, [state(2000, 'new')]));
      await database.write((trx) => upsertDeviceStates(database, trx, [state(1000, 'old')]));
      const s = await database.db.selectFrom('device_state').selectAll().where('device', '=', 'd-state').executeTakeFirstOrThrow();
      expect([s.last_values, Number(s.last_ts), Number(s.last_seen)]).toEqual(['new', 2000, 2000]);
      for (const [ts, v] of [[60_000, 5], [60_010, 2], [60_005, 9]]) {
        await database.write((trx) => recordRollups(database, trx, [{ device: 'd-roll', ts, values: { p: v } }]));
      }
      const r = await database.db.selectFrom('reading_rollups_1m').selectAll().where('device', '=', 'd-roll').executeTakeFirstOrThrow();
      expect([r.min, r.max, r.sum, Number(r.count), r.last, Number(r.last_ts)]).toEqual([2, 9, 16, 3, 2, 60_010]);
    });

    it.skipIf(backend !== 'postgres')('sends arrays as literals that PostgreSQL reads back element for element, NULL apart from "NULL"', async () => {
      const values = [...ODD, null, 'x'];
      const nums = [0, -1.5, 1e-7, 123456789012345, 0.1 + 0.2, 2 ** 53 - 1];
      const out = await database.write((trx) => trx.executeQuery(prepared<{ t: string | null; n: number | null }>(
        'select t, n from unnest($1::text[], $2::float8[]) as u (t, n)', [arrayLiteral(values), arrayLiteral(nums)])));
      expect(out.rows.map((r) => r.t)).toEqual(values);
      expect(out.rows.slice(0, nums.length).map((r) => r.n)).toEqual(nums);
      // Strings that need no escape JSON would write differently go through JSON.stringify's array.
      const plain = ODD.filter((s) => !/[\n\t\ud800-\udfff]/.test(s));
      expect(arrayLiteral(plain)).toBe(`{${JSON.stringify(plain).slice(1, -1)}}`);
      const back = await database.write((trx) => trx.executeQuery(prepared<{ t: string }>('select t from unnest($1::text[]) as u (t)', [arrayLiteral(plain)])));
      expect(back.rows.map((r) => r.t)).toEqual(plain);
    });

    it.skipIf(backend !== 'postgres')('runs the batch statements as named prepared statements, planned by PostgreSQL once per connection', async () => {
      const names = await database.write(async (trx) => {
        await insertReadings(database, trx, [row({ seq: 500 })]);
        return (await trx.executeQuery(prepared<{ statement: string }>('select statement from pg_prepared_statements where name like $1', ['cs\\_%']))).rows;
      });
      expect(names.map((n) => n.statement.split(' (')[0])).toContain('insert into readings');
    });
  });
});
