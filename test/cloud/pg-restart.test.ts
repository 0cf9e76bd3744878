import pg from 'pg';
import { sql } from 'kysely';
import { describe, expect, it } from 'vitest';
import { openDatabase } from '../../cloud/db/database.ts';
import { PG_ADMIN_URL, freshDatabase, pgAvailable } from './fixtures.ts';

/**
 * A PostgreSQL restart ends every session with 57P01 (the "restart PostgreSQL" fault drill, bench/drill-run.ts).
 * A connection checked out of the pool between two queries (inside a transaction) must not take the cloud
 * process down: its next query fails, and the pool serves new connections once the server is back.
 */
describe.skipIf(!pgAvailable)('PostgreSQL sessions terminated under the cloud', () => {
  it('a connection killed while checked out fails its query instead of crashing the process, and the pool recovers', async () => {
    const fresh = await freshDatabase('postgres');
    const database = openDatabase(fresh.db);
    const name = new URL((fresh.db as { url: string }).url).pathname.slice(1);
    const admin = new pg.Client({ connectionString: PG_ADMIN_URL });
    await admin.connect();
    try {
      await database.ping();
      const outcome = await database.write(async (trx) => {
        await sql`select 1`.execute(trx);
        // What a restart does to every session, ours mid-transaction among them.
        await admin.query('select pg_terminate_backend(pid) from pg_stat_activity where datname = $1 and pid <> pg_backend_pid()', [name]);
        await new Promise((r) => setTimeout(r, 300));
        await sql`select 1`.execute(trx);
        return 'committed';
      }).catch((err: Error) => `failed: ${err.message}`);
      expect(outcome).toMatch(/^failed/);
      await database.ping();
    } finally {
      await admin.end();
      await database.close();
      await fresh.drop();
    }
  }, 30_000);
});
