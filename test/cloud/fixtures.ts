import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { loadProfiles } from '../../devices/profile.ts';
import { loadDistrict, type District, type Device } from '../../devices/district.ts';
import type { DbOptions } from '../../cloud/app.ts';

/** Shared by the cloud suites: profiles, the demo district, synthetic districts, a database per backend. */

export const ROOT = fileURLToPath(new URL('../../', import.meta.url));
export const profiles = loadProfiles();
export const district = loadDistrict(join(ROOT, 'devices/district/xiangzhou.yaml'), profiles);
export const PG_ADMIN_URL = process.env.CS_TEST_PG_URL ?? 'postgresql://postgres@127.0.0.1:5432/test';

async function reachable(): Promise<boolean> {
  const c = new pg.Client({ connectionString: PG_ADMIN_URL, connectionTimeoutMillis: 1000 });
  try {
    await c.connect();
    return true;
  } catch {
    return false;
  } finally {
    await c.end().catch(() => undefined);
  }
}

export const pgAvailable = await reachable();
// CI (.ci/run) starts PostgreSQL and sets CS_REQUIRE_SERVICES=1: a run without it fails instead of passing on SQLite alone.
if (!pgAvailable && process.env.CS_REQUIRE_SERVICES === '1') throw new Error(`PostgreSQL required (CS_REQUIRE_SERVICES=1) but not reachable at ${PG_ADMIN_URL}`);
if (!pgAvailable) console.warn(`PostgreSQL not reachable at ${PG_ADMIN_URL}: the postgres variants of the cloud suites are skipped`);

export type Backend = 'sqlite' | 'postgres';
export const BACKENDS: { backend: Backend; skip: boolean }[] = [
  { backend: 'sqlite', skip: false },
  { backend: 'postgres', skip: !pgAvailable },
];

/** A fresh database for one suite: an SQLite file in a temp dir, or a PostgreSQL database of its own. */
export async function freshDatabase(backend: Backend): Promise<{ db: DbOptions; drop(): Promise<void> }> {
  if (backend === 'sqlite') {
    const dir = mkdtempSync(join(tmpdir(), 'cs-cloud-'));
    return { db: { kind: 'sqlite', file: join(dir, 'cs.db') }, drop: async () => rmSync(dir, { recursive: true, force: true }) };
  }
  const name = `cs_test_${randomBytes(5).toString('hex')}`;
  const admin = new pg.Client({ connectionString: PG_ADMIN_URL });
  await admin.connect();
  await admin.query(`create database ${name}`);
  await admin.end();
  const u = new URL(PG_ADMIN_URL);
  u.pathname = `/${name}`;
  return {
    db: { kind: 'postgres', url: u.toString() },
    async drop() {
      const a = new pg.Client({ connectionString: PG_ADMIN_URL });
      await a.connect();
      // Every pool is closed by now; wait until the server has let their sessions go.
      for (let i = 0; i < 200; i++) {
        const r = await a.query('select count(*)::int as n from pg_stat_activity where datname = $1', [name]);
        if (r.rows[0].n === 0) break;
        await new Promise((resolve) => setTimeout(resolve, 25));
      }
      await a.query(`drop database if exists ${name}`);
      await a.end();
    },
  };
}

/**
 * The demo district plus `extra` water-level points (`WL-T-0001`...) on `gateways` gateways
 * (`gw-t-0`...), owned by xz-drainage, maintained by iot-ops, in grid 440402009xxx.
 */
export function syntheticDistrict(extra: number, gateways = 1, profile = 'water-level'): District {
  const gws = Array.from({ length: gateways }, (_, i) => ({ id: `gw-t-${i}`, name: `test gateway ${i}` }));
  const buses: District['buses'] = [];
  const devices: Device[] = [];
  for (let i = 0; i < extra; i++) {
    const g = i % gateways;
    const busIndex = Math.floor(i / 200);
    const bus = `bus-t-${g}-${busIndex}`;
    if (!buses.some((b) => b.id === bus)) buses.push({ id: bus, gateway: gws[g].id, host: '127.0.0.1', port: 0, timeoutMs: 1000 });
    devices.push({
      id: `WL-T-${String(i + 1).padStart(4, '0')}`, profile, name: `Test point ${i + 1}`,
      componentCode: `4404020520${String(900000 + i).padStart(6, '0')}`, lat: 22.27, lon: 113.55,
      grid: `440402009${String(i % 10).padStart(3, '0')}`, ownerUnit: 'xz-drainage', maintainerUnit: 'iot-ops', bus, unitId: (i % 200) + 1,
    });
  }
  return { ...district, gateways: [...district.gateways, ...gws], buses: [...district.buses, ...buses], devices: [...district.devices, ...devices] };
}

export function reading(device: string, seq: number, ts: number, values: Record<string, unknown>, extra: Record<string, unknown> = {}): Buffer {
  return Buffer.from(JSON.stringify({ seq, ts: new Date(ts).toISOString(), device, values, quality: 'good', historical: false, ...extra }));
}
