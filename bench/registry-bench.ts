/**
 * The device registry at city scale (README "Device registry"): 100,000 devices imported as one CSV through
 * POST /api/registry/devices/import over loopback HTTP (timed), then the paged, filtered list
 * GET /api/registry/devices?...&limit=50 for several filter combinations (first pages and pages after a cursor,
 * 200+ requests, p50/p99), side by side in the same run with its peer: the same page fetched by the same SQL
 * statement through the driver directly (better-sqlite3, pg), reported as a ratio. Also the operator's list
 * GET /api/devices?limit=50 (in memory, the page's state read from the database). SQLite, then PostgreSQL.
 * `--quick`: 10,000 devices.
 */
import { mkdtempSync, rmSync, existsSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import pg from 'pg';
import { Sqlite } from '../lib/sqlite.ts';
import { silentLogger } from '../lib/log.ts';
import { loadProfiles } from '../devices/profile.ts';
import { loadDistrict } from '../devices/district.ts';
import { buildCloud, type DbOptions } from '../cloud/app.ts';
import { openDatabase } from '../cloud/db/database.ts';
import { pageQuery } from '../cloud/registry/list.ts';
import type { DeviceListQuery } from '../cloud/registry/schemas.ts';
import { CSV_COLUMNS } from '../cloud/registry/bulk.ts';
import { summarize } from './stats.ts';
import { PG_URL } from './ingest-paths.ts';
import { machine } from './report.ts';

export const REGISTRY_HEADING = '## Device registry: 100,000 devices, bulk import and the paged list';

const GATEWAYS = 50;
const BUSES_PER_GATEWAY = 9;
const PAGE = 50;
const REQUESTS_PER_COMBO = 24;
const TARGET_MS = 100;
const UNITS = ['xz-municipal', 'zh-water', 'xz-drainage', 'zh-gas', 'iot-ops'];
const PROFILES = ['water-level', 'manhole-cover', 'pipeline'];

/** The filter combinations timed: what an operator's console asks. */
const COMBOS: { label: string; q: Partial<DeviceListQuery> }[] = [
  { label: 'no filter', q: {} },
  { label: 'gateway', q: { gateway: 'gw-b-17' } },
  { label: 'unit (owner or maintainer)', q: { unit: 'zh-gas' } },
  { label: 'district', q: { district: '440403' } },
  { label: 'profile', q: { profile: 'manhole-cover' } },
  { label: 'gateway + profile', q: { gateway: 'gw-b-3', profile: 'pipeline' } },
  { label: 'unit + district + profile', q: { unit: 'zh-water', district: '440402', profile: 'water-level' } },
  { label: 'q, common (a street)', q: { q: 'jida' } },
  { label: 'q, rare (one device)', q: { q: 'point 04242' } },
  { label: 'retired', q: { status: 'retired' } },
];

function deviceCsv(n: number): string {
  const lines = [CSV_COLUMNS.join(',')];
  const streets = ['Jida', 'Gongbei', 'Xiangzhou', 'Qianshan', 'Nanping', 'Tangjia'];
  for (let i = 0; i < n; i++) {
    const g = i % GATEWAYS;
    const b = Math.floor(i / GATEWAYS) % BUSES_PER_GATEWAY;
    const unitId = Math.floor(i / (GATEWAYS * BUSES_PER_GATEWAY)) + 1;
    const county = i % 4 === 0 ? '440403' : '440402';
    const profile = PROFILES[i % 3];
    const major = profile === 'water-level' ? '0520' : profile === 'manhole-cover' ? '0104' : '0301';
    lines.push([
      `BR-${String(i).padStart(6, '0')}`, `Bench point ${String(i).padStart(5, '0')}`, profile, `${county}${major}${String(i).padStart(6, '0')}`,
      (22.2 + (i % 1000) / 10_000).toFixed(5), (113.5 + Math.floor(i / 1000) / 10_000).toFixed(5), `${streets[i % streets.length]} Road ${i}`, '',
      UNITS[i % 5], UNITS[(i + 2) % 5], `gw-b-${g}`, `bus-b-${g}-${b}`, unitId, '', '',
    ].join(','));
  }
  return `${lines.join('\n')}\n`;
}

async function freshDb(backend: 'sqlite' | 'postgres'): Promise<{ db: DbOptions; drop(): Promise<void> }> {
  if (backend === 'sqlite') {
    const dir = mkdtempSync(join(tmpdir(), 'cs-registry-bench-'));
    return { db: { kind: 'sqlite', file: join(dir, 'cs.db') }, drop: async () => rmSync(dir, { recursive: true, force: true }) };
  }
  const name = `cs_bench_registry_${randomBytes(4).toString('hex')}`;
  const admin = new pg.Client({ connectionString: PG_URL });
  await admin.connect();
  await admin.query(`create database ${name}`);
  await admin.end();
  const u = new URL(PG_URL);
  u.pathname = `/${name}`;
  return {
    db: { kind: 'postgres', url: u.toString() },
    async drop() {
      const a = new pg.Client({ connectionString: PG_URL });
      await a.connect();
      await a.query(`drop database if exists ${name} with (force)`);
      await a.end();
    },
  };
}

interface ComboResult { label: string; api: { p50: number; p99: number }; peer: { p50: number; p99: number }; items: number }
interface BackendResult {
  backend: string; devices: number; importMs: number; importBytes: number; combos: ComboResult[];
  all: { p50: number; p99: number; count: number }; peerAll: { p50: number; p99: number }; operator: { p50: number; p99: number; count: number }; operatorFirstMs: number;
}

async function runBackend(backend: 'sqlite' | 'postgres', n: number, log: (s: string) => void): Promise<BackendResult> {
  const profiles = loadProfiles();
  const district = loadDistrict(new URL('../devices/district/xiangzhou.yaml', import.meta.url).pathname, profiles);
  const fresh = await freshDb(backend);
  const cloud = await buildCloud({ db: fresh.db, district, profiles, escalation: false, emergency: false, registry: { pollMs: 0 }, logger: silentLogger(), http: { requestsPerSecond: 100_000, requestBurst: 100_000 } });
  await cloud.start();
  await cloud.app.listen({ port: 0, host: '127.0.0.1' });
  const base = `http://127.0.0.1:${(cloud.app.server.address() as AddressInfo).port}`;
  const token = await cloud.tokens.create('admin');
  const api = async (method: string, path: string, body?: string, type = 'application/json') => {
    const r = await fetch(`${base}${path}`, { method, headers: { authorization: `Bearer ${token}`, ...(body !== undefined ? { 'content-type': type } : {}) }, body });
    const text = await r.text();
    if (r.status >= 300) throw new Error(`${method} ${path}: ${r.status} ${text.slice(0, 500)}`);
    return JSON.parse(text);
  };
  // The city around the devices, through the API (not timed): a second district, 50 gateways of 9 buses.
  await api('POST', '/api/registry/districts', JSON.stringify({ county: '440403', name: 'Doumen (bench)' }));
  for (let g = 0; g < GATEWAYS; g++) {
    await api('POST', '/api/registry/gateways', JSON.stringify({ id: `gw-b-${g}`, name: `Bench gateway ${g}` }));
    for (let b = 0; b < BUSES_PER_GATEWAY; b++) await api('POST', '/api/registry/buses', JSON.stringify({ id: `bus-b-${g}-${b}`, gateway: `gw-b-${g}`, host: '10.0.0.1', port: 502 }));
  }
  const csv = deviceCsv(n);
  log(`   ${backend}: importing ${n.toLocaleString('en-US')} devices (${(csv.length / 1e6).toFixed(1)} MB of CSV)`);
  const t0 = performance.now();
  const imported = await api('POST', '/api/registry/devices/import', csv, 'text/csv');
  const importMs = performance.now() - t0;
  if (imported.created !== n) throw new Error(`imported ${JSON.stringify(imported)}, expected ${n} created`);
  log(`   ${backend}: imported in ${(importMs / 1000).toFixed(1)} s`);
  for (let i = 0; i < 100; i++) await api('POST', `/api/registry/devices/BR-${String((i * 997) % n).padStart(6, "0")}/retire`);

  // The peer: the same statement, through the driver itself.
  const peerDb = openDatabase(fresh.db);
  const raw = backend === 'sqlite' ? new Sqlite((fresh.db as { file: string }).file, { readonly: true }) : undefined;
  const client = backend === 'postgres' ? new pg.Client({ connectionString: (fresh.db as { url: string }).url }) : undefined;
  await client?.connect();
  const peer = async (q: Partial<DeviceListQuery>, cursor?: string): Promise<{ id: string }[]> => {
    const c = pageQuery(peerDb.db, { ...q, limit: PAGE, cursor } as DeviceListQuery).compile();
    if (raw) return raw.prepare(c.sql).all(...(c.parameters as unknown[])) as { id: string }[];
    return (await client!.query(c.sql, c.parameters as unknown[])).rows;
  };
  const qs = (q: Partial<DeviceListQuery>, cursor?: string) => new URLSearchParams({ ...Object.fromEntries(Object.entries(q).map(([k, v]) => [k, String(v)])), limit: String(PAGE), ...(cursor ? { cursor } : {}) }).toString();

  // Warm-up, not reported: each combination once both ways.
  for (const c of COMBOS) {
    await api('GET', `/api/registry/devices?${qs(c.q)}`);
    await peer(c.q);
  }
  const combos: ComboResult[] = [];
  const allApi: number[] = [];
  const allPeer: number[] = [];
  for (const c of COMBOS) {
    const a: number[] = [];
    const p: number[] = [];
    let cursor: string | undefined;
    let items = 0;
    for (let i = 0; i < REQUESTS_PER_COMBO; i++) {
      // Pages in turn: each request after the previous page's cursor; back to the first page at the end.
      let t = performance.now();
      const page = await api('GET', `/api/registry/devices?${qs(c.q, cursor)}`);
      a.push(performance.now() - t);
      t = performance.now();
      const rows = await peer(c.q, cursor);
      p.push(performance.now() - t);
      if (rows.slice(0, PAGE).map((r) => r.id).join() !== page.items.map((d: { id: string }) => d.id).join()) throw new Error(`${c.label}: the API's page and the peer's differ`);
      items += page.items.length;
      cursor = page.nextCursor ?? undefined;
    }
    allApi.push(...a);
    allPeer.push(...p);
    const sa = summarize(a);
    const sp = summarize(p);
    combos.push({ label: c.label, api: sa, peer: sp, items: Math.round(items / REQUESTS_PER_COMBO) });
    log(`   ${backend} ${c.label}: API p50 ${sa.p50.toFixed(1)} ms p99 ${sa.p99.toFixed(1)} ms; SQL p50 ${sp.p50.toFixed(2)} ms`);
  }
  // The operator's list (GET /api/devices), paged: in memory, the page's device_state rows from the database.
  const op: number[] = [];
  // The first request after a registry change builds the in-memory order and index of the devices (once per change).
  const tFirst = performance.now();
  await api('GET', `/api/devices?${qs({})}`);
  const operatorFirstMs = performance.now() - tFirst;
  for (const q of [{}, { gateway: 'gw-b-5' }, { unit: 'zh-gas', kind: 'pipeline' }, { q: 'jida' }, { district: '440403' }]) {
    let cursor: string | undefined;
    for (let i = 0; i < 10; i++) {
      const t = performance.now();
      const page = await api('GET', `/api/devices?${qs(q as Partial<DeviceListQuery>, cursor)}`);
      op.push(performance.now() - t);
      cursor = page.nextCursor ?? undefined;
    }
  }
  raw?.close();
  await client?.end();
  await peerDb.close();
  await cloud.stop();
  await fresh.drop();
  const all = summarize(allApi);
  const so = summarize(op);
  return { backend, devices: n, importMs, importBytes: csv.length, combos, all, peerAll: summarize(allPeer), operator: so, operatorFirstMs };
}

const ms = (v: number) => (v < 10 ? v.toFixed(2) : v.toFixed(1));

export function registrySection(results: BackendResult[]): string {
  const lines = [REGISTRY_HEADING, '', '`npm run bench -- --only registry` (bench/registry-bench.ts).', '', '### Machine', '', machine(), '', '### Method', '',
    `- A fresh database per backend; the cloud (cloud/app.ts) on loopback HTTP; ${GATEWAYS} gateways of ${BUSES_PER_GATEWAY} buses and a second district made through the registry API first (not timed).`,
    `- Import: one CSV of ${results[0]?.devices.toLocaleString('en-US')} devices (3 profiles, 5 units, 2 districts) in one \`POST /api/registry/devices/import\`: every row checked, then one transaction. Then 100 devices retired through the API.`,
    `- List: \`GET /api/registry/devices?...&limit=${PAGE}\`, ${COMBOS.length} filter combinations × ${REQUESTS_PER_COMBO} requests, each after the previous page's cursor (first and later pages), one at a time, timed at the client (HTTP, auth, JSON).`,
    '- Peer, in the same run: the same page by the SQL statement of cloud/registry/list.ts (`pageQuery`, compiled by Kysely) through better-sqlite3 or pg directly, no HTTP; its page checked equal to the API\'s. Ratio = API p50 / peer p50. With `q` the API finds the page\'s ids in the registry\'s memory and reads those rows by id (cloud/registry/search.ts); the peer scans the table with LIKE.',
    `- Operator's list: \`GET /api/devices?...&limit=${PAGE}\` (in memory, status and latest values read for the page), 5 filter combinations × 10 pages.`,
    '', '### Results', ''];
  for (const r of results) {
    lines.push(`**${r.backend}**: import of ${r.devices.toLocaleString('en-US')} devices (${(r.importBytes / 1e6).toFixed(1)} MB CSV) in **${(r.importMs / 1000).toFixed(1)} s** (${Math.round(r.devices / (r.importMs / 1000)).toLocaleString('en-US')} devices/s). `
      + `List over all ${r.all.count} requests: p50 **${ms(r.all.p50)} ms**, p99 **${ms(r.all.p99)} ms** (target under ${TARGET_MS} ms: ${r.all.p99 < TARGET_MS ? 'met' : 'NOT met'}); peer p50 ${ms(r.peerAll.p50)} ms. `
      + `Operator's list (${r.operator.count} requests): p50 ${ms(r.operator.p50)} ms, p99 ${ms(r.operator.p99)} ms; its first request after the import (building the in-memory order once) ${ms(r.operatorFirstMs)} ms.`, '');
    lines.push('| filter | items per page | API p50 ms | API p99 ms | SQL peer p50 ms | SQL peer p99 ms | ratio (p50) |', '|---|---:|---:|---:|---:|---:|---:|');
    for (const c of r.combos) lines.push(`| ${c.label} | ${c.items} | ${ms(c.api.p50)} | ${ms(c.api.p99)} | ${ms(c.peer.p50)} | ${ms(c.peer.p99)} | ${(c.api.p50 / c.peer.p50).toFixed(1)} |`);
    lines.push('');
  }
  lines.push('The ratio is what HTTP, authentication, schema checks and JSON add to the bare query: the query itself is the peer\'s column.', '');
  return lines.join('\n');
}

export async function registryBench(quick: boolean, log: (s: string) => void, skipPg = false): Promise<string> {
  const n = quick ? 10_000 : 100_000;
  const results: BackendResult[] = [];
  log(`-- device registry, ${n.toLocaleString('en-US')} devices`);
  results.push(await runBackend('sqlite', n, log));
  if (!skipPg) results.push(await runBackend('postgres', n, log));
  return registrySection(results);
}

export function writeRegistrySection(text: string): void {
  const url = new URL('RESULTS.md', import.meta.url);
  const doc = existsSync(url) ? readFileSync(url, 'utf8') : '# CitySteward benchmarks\n\n';
  const start = doc.indexOf(`${REGISTRY_HEADING}\n`);
  if (start < 0) return writeFileSync(url, `${doc.trimEnd()}\n\n${text.trimEnd()}\n`);
  const next = doc.indexOf('\n## ', start + REGISTRY_HEADING.length);
  writeFileSync(url, `${doc.slice(0, start)}${text.trimEnd()}\n${next < 0 ? '' : doc.slice(next)}`);
}
