import { createHash } from 'node:crypto';
import { dirname, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { topics } from '../../lib/topics.ts';
import { buildCloud, type Cloud, type DbOptions } from '../../cloud/app.ts';
import { openDatabase } from '../../cloud/db/database.ts';
import { createMigrator } from '../../cloud/db/migrations.ts';
import { auditHeads } from '../../cloud/audit/verify.ts';
import { runCliOnce } from '../helpers/process.ts';
import { BACKENDS, freshDatabase, profiles, reading, syntheticDistrict, type Backend } from './fixtures.ts';

/**
 * A record no one can quietly change (issue 13): every case-history row is chained to the one before it
 * in its case (docs/architecture.md#case-history-chain); `GET /api/audit/verify` and, on the SQLite
 * file, `citysteward audit verify` name the first row altered or deleted per case; an untouched database
 * verifies clean; the migration's backfill gives the same chain as the writes.
 */

const MIN = 60_000;
const T0 = Date.parse('2026-11-25T02:00:00Z');
const district = syntheticDistrict(10, 1);
const GW = 'gw-t-0';

describe.each(BACKENDS)('case history chain on $backend', ({ backend, skip }: { backend: Backend; skip: boolean }) => {
  describe.skipIf(skip)(backend, () => {
    let cloud: Cloud;
    let drop: () => Promise<void>;
    let db: DbOptions;
    let clock = T0;
    let seq = 0;
    const tok: Record<string, string> = {};
    const ids: string[] = [];

    beforeAll(async () => {
      const fresh = await freshDatabase(backend);
      drop = fresh.drop;
      // SQLite: the CLI's default file in the temp directory, so `audit verify --data-dir` reads this database.
      db = fresh.db.kind === 'sqlite' ? { kind: 'sqlite', file: join(dirname(fresh.db.file), 'citysteward.db') } : fresh.db;
      cloud = await buildCloud({ db, district, profiles, now: () => clock, escalation: false, emergency: false });
      await cloud.start();
      for (const r of ['operator', 'admin'] as const) tok[r] = await cloud.tokens.create(r);
      tok.crew = await cloud.tokens.create('crew', 'xz-drainage');
      for (let i = 1; i <= 3; i++) {
        const device = `WL-T-${String(i).padStart(4, '0')}`;
        const opened = await cloud.ingest(GW, topics.up(GW, device), reading(device, ++seq, clock, { level_m: 0.9 }));
        const id = (opened as { cases: { caseId: string }[] }).cases[0].caseId;
        ids.push(id);
        for (const [action, token, body] of [['note', tok.operator, { notes: 'called the unit' }], ['accept', tok.crew, {}], ['note', tok.crew, { notes: 'on the way' }]] as const) {
          clock += MIN;
          const r = await post(id, action, token, body);
          expect(r.statusCode, r.body).toBe(200);
        }
      }
    });

    afterAll(async () => {
      await cloud?.stop();
      await drop?.();
    });

    const post = (id: string, action: string, token: string, body: Record<string, unknown>) =>
      cloud.app.inject({ method: 'POST', url: `/api/cases/${id}/${action}`, headers: { authorization: `Bearer ${token}` }, payload: body });
    const verify = async (token = tok.admin) => cloud.app.inject({ url: '/api/audit/verify', headers: { authorization: `Bearer ${token}` } });
    async function sql<T>(f: (d: ReturnType<typeof openDatabase>['db']) => Promise<T>): Promise<T> {
      const d = openDatabase(db);
      try { return await f(d.db); } finally { await d.close(); }
    }

    it('every row written by the actions is chained to the one before it and the case head names the last', async () => {
      const rows = await sql((d) => d.selectFrom('case_history').selectAll().where('case_id', '=', ids[0]).orderBy('seq').execute());
      expect(rows.length).toBeGreaterThanOrEqual(4);
      expect(rows[0].prev_hash).toBeNull();
      for (let i = 1; i < rows.length; i++) expect(rows[i].prev_hash).toBe(rows[i - 1].hash);
      expect(new Set(rows.map((r) => r.hash)).size).toBe(rows.length);
      const c = await sql((d) => d.selectFrom('cases').select('history_head').where('id', '=', ids[0]).executeTakeFirstOrThrow());
      expect(c.history_head).toBe(rows[rows.length - 1].hash);
    });

    it('auditHeads folds the heads of the cases a figure counted into one digest (for the evaluation report)', async () => {
      const heads = await sql((d) => d.selectFrom('cases').select(['id', 'history_head']).where('id', 'in', ids.slice(0, 2)).execute());
      const expected = createHash('sha256').update(heads.sort((a, b) => (a.id < b.id ? -1 : 1)).map((c) => `${c.id}:${c.history_head}\n`).join('')).digest('hex');
      const got = await sql((d) => auditHeads(d, [ids[1], ids[0], ids[1]]));
      expect(got.caseHistory).toEqual({ cases: 2, digest: expected });
      expect((await sql((d) => auditHeads(d))).caseHistory.cases).toBe(3);
      expect(got.credentialLog).toBe((await verify()).json().credentialLog.head);
    });

    it('an untouched database verifies clean through the API (admin only) and the CLI', async () => {
      const r = await verify();
      expect(r.statusCode, r.body).toBe(200);
      expect(r.json()).toMatchObject({ ok: true, cases: 3, faults: [] });
      expect(r.json().rows).toBeGreaterThanOrEqual(12);
      expect((await verify(tok.operator)).statusCode).toBe(403);
      if (db.kind === 'sqlite') {
        const cli = await runCliOnce(['audit', 'verify', '--data-dir', dirname(db.file)]);
        expect(cli.code, cli.output).toBe(0);
        expect(JSON.parse(cli.output)).toMatchObject({ ok: true, cases: 3, faults: [] });
      }
    });

    it('the migration chains existing rows as the writes did (backfill in seq order per case)', async () => {
      const before = await sql((d) => d.selectFrom('case_history').select(['case_id', 'seq', 'prev_hash', 'hash']).orderBy('case_id').orderBy('seq').execute());
      await sql(async (d) => {
        const m = createMigrator(d);
        const down = await m.migrateTo('0008_reading_rollups');
        expect(down.error).toBeUndefined();
        expect(down.results?.map((r) => r.migrationName)).toContain('0009_history_chain');
        const up = await m.migrateToLatest();
        expect(up.error).toBeUndefined();
      });
      const after = await sql((d) => d.selectFrom('case_history').select(['case_id', 'seq', 'prev_hash', 'hash']).orderBy('case_id').orderBy('seq').execute());
      expect(after).toEqual(before);
      // 0011 starts the credential log with the tokens that exist (cloud/audit/migration.ts).
      expect((await verify()).json()).toMatchObject({ ok: true, faults: [], credentialLog: { ok: true, rows: 3 } });
    });

    it('a row edited with SQL in one case and a row deleted in another are both named, the third case is not', async () => {
      await sql(async (d) => {
        await d.updateTable('case_history').set({ note: 'nothing to see' }).where('case_id', '=', ids[0]).where('seq', '=', 2).execute();
        await d.deleteFrom('case_history').where('case_id', '=', ids[1]).where('seq', '=', 2).execute();
      });
      const r = await verify();
      expect(r.statusCode).toBe(200);
      const body = r.json();
      expect(body.ok).toBe(false);
      expect(body.faults.map((f: { caseId: string; seq: number; kind: string }) => [f.caseId, f.seq, f.kind]).sort()).toEqual([
        [ids[0], 2, 'altered'],
        [ids[1], 3, 'broken-link'],
      ].sort());
      if (db.kind === 'sqlite') {
        const cli = await runCliOnce(['audit', 'verify', '--data-dir', dirname(db.file)]);
        expect(cli.code, cli.output).toBe(1);
        expect(JSON.parse(cli.output).faults).toEqual(body.faults);
      }
    });

    it('a deleted last row shows as a deleted tail: the case head no longer matches', async () => {
      const last = await sql((d) => d.selectFrom('case_history').select('seq').where('case_id', '=', ids[2]).orderBy('seq', 'desc').executeTakeFirstOrThrow());
      await sql((d) => d.deleteFrom('case_history').where('case_id', '=', ids[2]).where('seq', '=', last.seq).execute());
      const f = (await verify()).json().faults.find((x: { caseId: string }) => x.caseId === ids[2]);
      expect(f).toMatchObject({ caseId: ids[2], seq: Number(last.seq) - 1, kind: 'deleted-tail' });
    });
  });
});
