/**
 * Group commit in isolation (docs/architecture.md#ingest): the cloud's ingest pipeline in this
 * process on a fresh SQLite file (WAL, synchronous=NORMAL), the same readings stored one per
 * transaction (`batch.maxReadings: 1`) and in batches (the defaults), runs alternated. Readings
 * come as from 100 gateways with 10 unacknowledged each: 1,000 in hand, the next sent as one
 * settles. Reported: readings/s, CPU per reading (process.cpuUsage), bytes the process wrote per
 * reading (/proc/self/io wchar), and commits. No broker, no network: the store's share only;
 * `--only ingest` measures end to end.
 */
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadProfiles } from '../devices/profile.ts';
import { loadDistrict, type District } from '../devices/district.ts';
import { defaultRuleSet } from '../devices/rules.ts';
import { silentLogger } from '../lib/log.ts';
import { DEFAULT_CATEGORIES } from '../cloud/categories.ts';
import { createCalendar } from '../cloud/calendar.ts';
import { DEFAULT_WORKFLOW } from '../cloud/cases/index.ts';
import { openDatabase } from '../cloud/db/database.ts';
import { createEventBus } from '../cloud/events.ts';
import { createIngestor } from '../cloud/ingest.ts';
import { DEFAULT_BATCH, type BatchOptions } from '../cloud/ingest-batch.ts';
import { NORMAL_MODE } from '../cloud/mode.ts';
import { DEFAULT_ROUTING } from '../cloud/routing.ts';
import { createRuleEngine } from '../cloud/rules.ts';
import { machine } from './report.ts';

export const INGEST_BATCH_HEADING = '## Ingest: one transaction per reading vs group commit';
const GATEWAYS = 100;
const PER_GATEWAY = 10;
const IN_HAND = 1000;

interface Run { mode: string; readings: number; perSecond: number; cpuUsPerReading: number; bytesPerReading: number; commits: number }

function testDistrict(): { district: District; profiles: ReturnType<typeof loadProfiles> } {
  const profiles = loadProfiles();
  const base = loadDistrict(new URL('../devices/district/xiangzhou.yaml', import.meta.url).pathname, profiles);
  const gateways = Array.from({ length: GATEWAYS }, (_, g) => ({ id: `gw-b-${g}`, name: `bench gateway ${g}` }));
  const buses = gateways.map((g) => ({ id: `bus-${g.id}`, gateway: g.id, host: '127.0.0.1', port: 0, timeoutMs: 1000 }));
  const devices = Array.from({ length: GATEWAYS * PER_GATEWAY }, (_, i) => ({
    id: `WL-B-${String(i).padStart(4, '0')}`, profile: 'water-level', name: `bench point ${i}`,
    componentCode: `4404020520${String(800000 + i).padStart(6, '0')}`, lat: 22.27, lon: 113.55, grid: '440402009001',
    ownerUnit: 'xz-drainage', maintainerUnit: 'iot-ops', bus: buses[i % GATEWAYS].id, unitId: Math.floor(i / GATEWAYS) + 1,
  }));
  return { profiles, district: { ...base, gateways: [...base.gateways, ...gateways], buses: [...base.buses, ...buses], devices: [...base.devices, ...devices] } };
}

const wchar = (): number => Number(/wchar:\s*(\d+)/.exec(readFileSync('/proc/self/io', 'utf8'))?.[1] ?? NaN);

/** `minutes`: each device's readings a minute apart (every reading opens a minute bucket), else 1 ms apart (one bucket). */
async function runOnce(mode: string, batch: Partial<BatchOptions>, readings: number, minutes = false): Promise<Run> {
  const { district, profiles } = testDistrict();
  const dir = mkdtempSync(join(tmpdir(), 'cs-bench-batch-'));
  const database = openDatabase({ kind: 'sqlite', file: join(dir, 'cs.db') });
  try {
    await database.migrate();
    const t0 = Date.parse('2026-11-30T00:00:00Z');
    const ingestor = createIngestor({
      database, district, profiles, engine: createRuleEngine(defaultRuleSet(profiles)), mode: NORMAL_MODE, events: createEventBus(),
      env: { categories: DEFAULT_CATEGORIES, calendar: createCalendar(), routing: DEFAULT_ROUTING, workflow: DEFAULT_WORKFLOW },
      now: () => t0 + readings * 1000, logger: silentLogger(), batch,
    });
    const bodies = Array.from({ length: readings }, (_, n) => {
      const d = n % (GATEWAYS * PER_GATEWAY);
      const seq = Math.floor(n / (GATEWAYS * PER_GATEWAY)) + 1;
      const device = `WL-B-${String(d).padStart(4, '0')}`;
      const ts = minutes ? t0 + (seq - 1) * 60_000 + d : t0 + n;
      return {
        gw: `gw-b-${d % GATEWAYS}`, device,
        payload: Buffer.from(JSON.stringify({ seq, ts: new Date(ts).toISOString(), device, values: { level_m: 0.3 + (n % 7) / 100, battery_pct: 90 }, quality: 'good', historical: false })),
      };
    });
    const commits0 = database.writes().commits;
    const w0 = wchar();
    const cpu0 = process.cpuUsage();
    const start = performance.now();
    let next = 0;
    let failed = 0;
    const lane = async (): Promise<void> => {
      while (next < bodies.length) {
        const b = bodies[next++];
        const r = await ingestor.ingest(b.gw, `cs/v1/${b.gw}/up/${b.device}`, b.payload);
        if (r.status !== 'stored') failed++;
      }
    };
    await Promise.all(Array.from({ length: IN_HAND }, lane));
    const ms = performance.now() - start;
    const cpu = process.cpuUsage(cpu0);
    if (failed) throw new Error(`${failed} readings not stored`);
    ingestor.close();
    return {
      mode, readings, perSecond: readings / (ms / 1000), cpuUsPerReading: (cpu.user + cpu.system) / readings,
      bytesPerReading: (wchar() - w0) / readings, commits: database.writes().commits - commits0,
    };
  } finally {
    await database.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

export async function ingestBatchBench(quick: boolean, log: (s: string) => void): Promise<string> {
  const readings = quick ? 5_000 : 50_000;
  const pairs = quick ? 1 : 3;
  const modes: [string, Partial<BatchOptions>, boolean][] = [
    ['one reading per transaction (batch.maxReadings 1)', { maxReadings: 1 }, false],
    [`group commit (defaults: ${DEFAULT_BATCH.maxReadings} readings or ${DEFAULT_BATCH.maxDelayMs} ms)`, {}, false],
    ['group commit, each device\'s readings a minute apart (a new minute bucket each)', {}, true],
  ];
  await runOnce('warm-up', {}, 2_000);
  const runs = new Map<string, Run[]>(modes.map(([m]) => [m, []]));
  for (let p = 0; p < pairs; p++) {
    for (const [mode, batch, minutes] of p % 2 === 0 ? modes : [...modes].reverse()) {
      const r = await runOnce(mode, batch, readings, minutes);
      log(`-- ingest-batch ${mode}: ${r.perSecond.toFixed(0)} readings/s, ${r.cpuUsPerReading.toFixed(1)} µs CPU, ${r.bytesPerReading.toFixed(0)} B written per reading, ${r.commits} commits`);
      runs.get(mode)!.push(r);
    }
  }
  const rows = [...runs].map(([mode, rs]) => `| ${mode} | ${median(rs.map((r) => r.perSecond)).toFixed(0)} | ${median(rs.map((r) => r.cpuUsPerReading)).toFixed(1)} | ${median(rs.map((r) => r.bytesPerReading)).toFixed(0)} | ${median(rs.map((r) => r.commits))} |`);
  return [
    INGEST_BATCH_HEADING, '', machine(), '',
    `The cloud's ingest pipeline (intake, checks, rules, store) in one process on a fresh SQLite file (WAL, synchronous=NORMAL), ${readings.toLocaleString('en-US')} in-range`,
    `readings from ${GATEWAYS} gateways × ${PER_GATEWAY} water-level points, ${IN_HAND} in hand (the next sent as one settles), median of ${pairs} alternated runs per mode;`,
    'no broker or network (the store\'s share only; `--only ingest` is end to end). CPU from process.cpuUsage; bytes = write syscalls of the process (/proc/self/io wchar).',
    'All modes use the prepared statements; the first is what storing each reading in its own transaction costs. The first two send each device\'s readings 1 ms apart',
    '(the rollups\' upserts update one bucket per device); the third a minute apart, as deployed points report (each reading inserts a minute bucket). Generated by `npm run bench -- --only ingest-batch` (bench/ingest-batch-bench.ts).', '',
    '| mode | readings/s | CPU µs per reading | bytes written per reading | commits |',
    '|---|---:|---:|---:|---:|',
    ...rows, '',
    'On a shared machine readings/s follows the load; CPU and bytes per reading are the figures to compare.', '',
  ].join('\n');
}

export function writeIngestBatchSection(section: string): void {
  const url = new URL('RESULTS.md', import.meta.url);
  const text = existsSync(url) ? readFileSync(url, 'utf8') : '# CitySteward benchmarks\n\n';
  const start = text.indexOf(`${INGEST_BATCH_HEADING}\n`);
  if (start < 0) return writeFileSync(url, `${text.trimEnd()}\n\n${section.trimEnd()}\n`);
  const next = text.indexOf('\n## ', start + INGEST_BATCH_HEADING.length);
  writeFileSync(url, `${text.slice(0, start)}${section.trimEnd()}\n${next < 0 ? '' : text.slice(next)}`);
}
