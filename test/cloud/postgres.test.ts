import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadProfiles } from '../../devices/profile.ts';
import { loadDistrict } from '../../devices/district.ts';
import { topics } from '../../lib/topics.ts';
import { buildCloud, type Cloud } from '../../cloud/app.ts';
import { openDatabase } from '../../cloud/db/database.ts';

/**
 * The same migrations and case upsert on PostgreSQL. Runs when a server answers at
 * CS_TEST_PG_URL (default: the machine's trust-auth PostgreSQL on loopback); skipped otherwise.
 */
const ADMIN_URL = process.env.CS_TEST_PG_URL ?? 'postgresql://postgres@127.0.0.1:5432/test';
const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const profiles = loadProfiles();
const district = loadDistrict(join(ROOT, 'devices/district/xiangzhou.yaml'), profiles);

async function reachable(): Promise<boolean> {
  const c = new pg.Client({ connectionString: ADMIN_URL, connectionTimeoutMillis: 1000 });
  try {
    await c.connect();
    return true;
  } catch {
    return false;
  } finally {
    await c.end().catch(() => undefined);
  }
}

const available = await reachable();

describe.skipIf(!available)('PostgreSQL', () => {
  const name = `cs_test_${randomBytes(4).toString('hex')}`;
  let url: string;
  const clouds: Cloud[] = [];

  beforeAll(async () => {
    const admin = new pg.Client({ connectionString: ADMIN_URL });
    await admin.connect();
    await admin.query(`create database ${name}`);
    await admin.end();
    const u = new URL(ADMIN_URL);
    u.pathname = `/${name}`;
    url = u.toString();
  });

  afterAll(async () => {
    for (const c of clouds) await c.stop();
    const admin = new pg.Client({ connectionString: ADMIN_URL });
    await admin.connect();
    // Every pool was closed above; wait until the server has let their sessions go.
    for (let i = 0; i < 200; i++) {
      const r = await admin.query('select count(*)::int as n from pg_stat_activity where datname = $1', [name]);
      if (r.rows[0].n === 0) break;
      await new Promise((resolve) => setTimeout(resolve, 25));
    }
    await admin.query(`drop database if exists ${name}`);
    await admin.end();
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
      expect(history.map((h) => h.seq)).toEqual(Array.from({ length: 31 }, (_, i) => i + 1));
      expect(await db.db.selectFrom('readings').select('seq').execute()).toHaveLength(30);
    } finally {
      await db.close();
    }

    const token = await clouds[0].tokens.create('crew', 'xz-drainage');
    const r = await clouds[1].app.inject({ url: '/api/cases', headers: { authorization: `Bearer ${token}` } });
    expect(r.json().items).toMatchObject([{ device: 'XZ-WL-001', breachCount: 30, emergency: true }]);
  });
});
