import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildCloud, type Cloud, type DbOptions } from '../../cloud/app.ts';
import { openDatabase } from '../../cloud/db/database.ts';
import { backfillEmergencyLog } from '../../cloud/audit/migration.ts';
import { runCliOnce } from '../helpers/process.ts';
import { BACKENDS, district, freshDatabase, profiles, type Backend } from './fixtures.ts';

/**
 * The emergency log and credential changes chained (issue 13, docs/architecture.md#audit-chains):
 * every switch of the mode and every change of a user or token is a row chained to the one before it;
 * `GET /api/audit/verify` and `citysteward audit verify` (the real CLI, on SQLite by its data directory,
 * on PostgreSQL by a config file) name an emergency-log row edited with SQL and a credential-log row
 * deleted with SQL; an untouched database verifies clean; the migration's backfill gives the live hashes.
 */

const T0 = Date.parse('2026-11-25T02:00:00Z');
const MIN = 60_000;

describe.each(BACKENDS)('emergency and credential chains on $backend', ({ backend, skip }: { backend: Backend; skip: boolean }) => {
  describe.skipIf(skip)(backend, () => {
    let cloud: Cloud;
    let drop: () => Promise<void>;
    let db: DbOptions;
    let cliDir: string;
    let clock = T0;
    const tok: Record<string, string> = {};

    beforeAll(async () => {
      const fresh = await freshDatabase(backend);
      drop = fresh.drop;
      cliDir = mkdtempSync(join(tmpdir(), 'cs-audit-cli-'));
      // SQLite: the CLI's default file, so `--data-dir` reads this database; PostgreSQL: a config file naming it.
      db = fresh.db.kind === 'sqlite' ? { kind: 'sqlite', file: join(dirname(fresh.db.file), 'citysteward.db') } : fresh.db;
      if (db.kind === 'postgres') {
        writeFileSync(join(cliDir, 'cloud.json'), JSON.stringify({ district: 'district.yaml', mqtt: { url: 'mqtt://127.0.0.1:1', username: 'cloud', password: 'unused-here' }, database: { kind: 'postgres', url: db.url } }));
      }
      cloud = await buildCloud({ db, district, profiles, now: () => clock, escalation: false });
      await cloud.start();
      // Issued at once: appends to the credential log serialise on its head (PostgreSQL: the row lock).
      const issued = await Promise.all((['admin', 'commander', 'operator', 'operator', 'verifier', 'verifier'] as const).map((r) => cloud.tokens.create(r)));
      [tok.admin, tok.commander] = issued;
      const revoked = issued[2];
      clock += MIN;
      expect(await cloud.tokens.revokeToken(revoked)).toBe(true);
      for (const [mode, level] of [['emergency', 'III'], ['emergency', 'II'], ['normal', undefined]] as const) {
        clock += MIN;
        const r = await cloud.app.inject({ method: 'POST', url: '/api/emergency', headers: { authorization: `Bearer ${tok.commander}` }, payload: { mode, level, reason: `typhoon drill ${mode}` } });
        expect(r.statusCode, r.body).toBe(200);
      }
      clock += MIN;
      await cloud.users.create('li.wei', 'operator', undefined, 'correct horse battery', 'user:admin');
      await cloud.users.setPassword('li.wei', 'another long password', 'user:admin');
      expect(await cloud.users.setRole('li.wei', 'crew', 'xz-drainage', 'user:admin')).toBe(true);
      expect(await cloud.users.disable('li.wei', 'user:admin')).toBe(true);
    });

    afterAll(async () => {
      await cloud?.stop();
      await drop?.();
      if (cliDir) rmSync(cliDir, { recursive: true, force: true });
    });

    const verify = async (token = tok.admin) => cloud.app.inject({ url: '/api/audit/verify', headers: { authorization: `Bearer ${token}` } });
    const cli = (...args: string[]) => runCliOnce([...args, ...(db.kind === 'sqlite' ? ['--data-dir', dirname(db.file)] : ['--config', join(cliDir, 'cloud.json')])]);
    async function sql<T>(f: (d: ReturnType<typeof openDatabase>['db']) => Promise<T>): Promise<T> {
      const d = openDatabase(db);
      try { return await f(d.db); } finally { await d.close(); }
    }

    it('the credential log holds who changed which credential and how, never a secret or its hash', async () => {
      const cliUser = await cli('user', 'create', 'zhang.min', '--role', 'verifier', '--password', 'a long enough password');
      expect(cliUser.code, cliUser.output).toBe(0);
      const r = await cloud.app.inject({ url: '/api/audit/credentials?limit=4', headers: { authorization: `Bearer ${tok.admin}` } });
      expect(r.statusCode, r.body).toBe(200);
      const page = r.json();
      expect(page.items.map((e: any) => [e.subjectKind, e.subject, e.action, e.actor])).toEqual([
        ['user', 'zhang.min', 'create', expect.stringMatching(/^cli/)],
        ['user', 'li.wei', 'disable', 'user:admin'],
        ['user', 'li.wei', 'role', 'user:admin'],
        ['user', 'li.wei', 'password', 'user:admin'],
      ]);
      expect(page.items[2].details).toEqual({ from: { role: 'operator', unit: null }, to: { role: 'crew', unit: 'xz-drainage' } });
      const older = (await cloud.app.inject({ url: `/api/audit/credentials?before=${page.nextBefore}`, headers: { authorization: `Bearer ${tok.admin}` } })).json();
      expect(older.nextBefore).toBeNull();
      expect(older.items.map((e: any) => [e.subjectKind, e.action])).toEqual([
        ['user', 'create'], ['token', 'revoke'], ...Array(6).fill(['token', 'create']),
      ]);
      expect(older.items[0].details).toEqual({ role: 'operator', unit: null });
      const rows = await sql((d) => d.selectFrom('credential_log').selectAll().execute());
      const stored = await sql((d) => d.selectFrom('users').select('password_hash').execute());
      const text = JSON.stringify(rows);
      for (const s of [...stored.map((u) => u.password_hash), 'another long password', tok.admin, tok.commander]) expect(text).not.toContain(s);
      expect(text).not.toMatch(/scrypt\$|cst_/);
      expect((await cloud.app.inject({ url: '/api/audit/credentials', headers: { authorization: `Bearer ${tok.commander}` } })).statusCode).toBe(403);
    });

    it('an untouched database verifies clean through the API and the CLI', async () => {
      const r = await verify();
      expect(r.statusCode, r.body).toBe(200);
      const body = r.json();
      expect(body).toMatchObject({ ok: true, faults: [], emergencyLog: { ok: true, rows: 3, fault: null }, credentialLog: { ok: true, rows: 12, fault: null } });
      const c = await cli('audit', 'verify');
      expect(c.code, c.output).toBe(0);
      expect(JSON.parse(c.output)).toEqual(body);
    });

    it('an Open311 client app\'s key issued and revoked with the CLI is logged too', async () => {
      const created = await cli('open311-key', 'create', 'Zhuhai city app');
      expect(created.code, created.output).toBe(0);
      const { id, key } = JSON.parse(created.output);
      expect((await cli('open311-key', 'revoke', id)).code).toBe(0);
      const page = (await cloud.app.inject({ url: `/api/audit/credentials?subject=${id}`, headers: { authorization: `Bearer ${tok.admin}` } })).json();
      expect(page.items.map((e: any) => [e.subjectKind, e.action, e.actor.replace(/^cli:.*/, 'cli'), e.details])).toEqual([
        ['open311-key', 'revoke', 'cli', null], ['open311-key', 'create', 'cli', { name: 'Zhuhai city app' }],
      ]);
      expect(JSON.stringify(await sql((d) => d.selectFrom('credential_log').selectAll().execute()))).not.toContain(key);
      expect((await verify()).json()).toMatchObject({ ok: true, credentialLog: { ok: true, rows: 14 } });
    });

    it('the migration backfills the emergency log with the hashes the switches wrote', async () => {
      const live = await sql((d) => d.selectFrom('emergency_log').select(['seq', 'prev_hash', 'hash']).orderBy('seq').execute());
      expect(live).toHaveLength(3);
      expect(live[0].prev_hash).toBeNull();
      expect(live[2].prev_hash).toBe(live[1].hash);
      await sql(async (d) => {
        await d.updateTable('emergency_log').set({ prev_hash: null, hash: null }).execute();
        await d.deleteFrom('audit_heads').where('chain', '=', 'emergency_log').execute();
        await backfillEmergencyLog(d);
      });
      expect(await sql((d) => d.selectFrom('emergency_log').select(['seq', 'prev_hash', 'hash']).orderBy('seq').execute())).toEqual(live);
      expect((await verify()).json()).toMatchObject({ ok: true, emergencyLog: { ok: true, head: live[2].hash } });
    });

    it('an emergency-log row edited and a credential-log row deleted with SQL are both named, API and CLI', async () => {
      await sql(async (d) => {
        await d.updateTable('emergency_log').set({ reason: 'nothing happened' }).where('seq', '=', 2).execute();
        await d.deleteFrom('credential_log').where('seq', '=', 4).execute();
      });
      const r = await verify();
      expect(r.statusCode).toBe(200);
      const body = r.json();
      expect(body.ok).toBe(false);
      expect(body.faults).toEqual([]);
      expect(body.emergencyLog).toMatchObject({ ok: false, fault: { seq: 2, kind: 'altered' } });
      expect(body.credentialLog).toMatchObject({ ok: false, fault: { seq: 5, kind: 'broken-link' } });
      const c = await cli('audit', 'verify');
      expect(c.code, c.output).toBe(1);
      expect(JSON.parse(c.output)).toEqual(body);
    });

    it('a deleted last row of a log shows as a deleted tail', async () => {
      const last = await sql((d) => d.selectFrom('credential_log').select('seq').orderBy('seq', 'desc').executeTakeFirstOrThrow());
      await sql(async (d) => {
        await d.updateTable('emergency_log').set({ reason: 'typhoon drill emergency' }).where('seq', '=', 2).execute();
        await d.deleteFrom('emergency_log').where('seq', '=', 3).execute();
      });
      const body = (await verify()).json();
      expect(body.emergencyLog).toMatchObject({ ok: false, rows: 2, fault: { seq: 2, kind: 'deleted-tail' } });
      expect(body.credentialLog.fault.seq).toBeLessThan(Number(last.seq));
    });
  });
});
