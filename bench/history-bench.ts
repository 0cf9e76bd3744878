/**
 * A device's history for a chart (README "Devices for the operator"): a month of one-second
 * readings of one water-level sensor (2,592,000 rows) stored in a temp SQLite database through the
 * cloud's store functions in big batches (raw rows and their minute and hour rollups,
 * cloud/db/rollups.ts), then GET /api/devices/:id/readings?buckets=500's answer from the level the
 * route picks (cloud/db/rollup-buckets.ts) timed against the same buckets (same from, to and step)
 * aggregated in SQL over the raw rows (cloud/db/reading-buckets.ts), for a month, a week and a day.
 * `--quick`: three days instead of a month.
 */
import { mkdtempSync, existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sql } from 'kysely';
import { openDatabase } from '../cloud/db/database.ts';
import { readingBuckets } from '../cloud/db/reading-buckets.ts';
import { insertReadings, type ReadingRow } from '../cloud/db/reading-store.ts';
import { historyBuckets, planHistory, rollupStatement } from '../cloud/db/rollup-buckets.ts';
import { recordRollups, ROLLUP_LEVELS, type RolledReading } from '../cloud/db/rollups.ts';
import { DEFAULT_RETENTION } from '../cloud/reading-retention.ts';
import { machine } from './report.ts';

export const HISTORY_HEADING = '## Device history: a month of 1 s readings in 500 buckets';

const DEVICE = 'XZ-WL-001';
const T0 = Date.parse('2026-09-01T00:00:00Z');
const BUCKETS = 500;
const POINTS = ['level_m', 'battery_pct'];
const RUNS = 7;
const TARGET_MS = 50;
const TARGET_RATIO = 20;

interface Timing { label: string; level: string; stepMs: number; rows: number; rollupMs: number[]; rawMs: number; same: boolean }

async function time<T>(fn: () => Promise<T>): Promise<[number, T]> {
  const t = performance.now();
  const v = await fn();
  return [performance.now() - t, v];
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

export async function historyBench(quick: boolean, log: (s: string) => void): Promise<string> {
  const days = quick ? 3 : 30;
  const total = days * 86_400;
  const dir = mkdtempSync(join(tmpdir(), 'cs-history-'));
  const database = openDatabase({ kind: 'sqlite', file: join(dir, 'cs.db') });
  try {
    await database.migrate();
    log(`-- history: storing ${total.toLocaleString('en-US')} readings (${days} days at 1 s) with their rollups`);
    const started = performance.now();
    for (let start = 0; start < total; start += 50_000) {
      const rows: ReadingRow[] = [];
      const rolled: RolledReading[] = [];
      for (let i = start; i < Math.min(total, start + 50_000); i++) {
        const ts = T0 + i * 1000;
        // A tide-like level and a slowly draining battery, both numbers, as the edge sends them.
        const values = { level_m: Math.round((0.3 + 0.2 * Math.sin(i / 22_357) + ((i * 7919) % 100) / 2000) * 1000) / 1000, battery_pct: 100 - Math.floor(i / total * 30) };
        rows.push({ gateway: 'gw-xz-jida', stream: '', seq: i + 1, device: DEVICE, ts, received_at: ts + 40, values_json: JSON.stringify(values), quality: 'good', historical: 0 });
        rolled.push({ device: DEVICE, ts, values });
      }
      await database.write(async (trx) => {
        await insertReadings(database, trx, rows);
        await recordRollups(database, trx, rolled);
      });
    }
    await sql`analyze`.execute(database.db);
    const writeS = (performance.now() - started) / 1000;
    log(`   stored in ${writeS.toFixed(1)} s`);

    const to = T0 + total * 1000;
    const now = to;
    const hourPlan = planHistory({ from: T0, to, stepMs: 7_200_000, now, maxBuckets: 2000 }, DEFAULT_RETENTION);
    const plan = (await sql<{ detail: string }>`explain query plan ${rollupStatement('sqlite', ROLLUP_LEVELS[1], { device: DEVICE, from: hourPlan.from, to: hourPlan.to, stepMs: hourPlan.stepMs, points: POINTS })}`.execute(database.db)).rows.map((r) => r.detail);
    log(`   plan: ${plan.join(' | ')}`);
    const spans = [
      { label: `${days} days`, spanMs: total * 1000 },
      ...(quick ? [] : [{ label: '7 days', spanMs: 7 * 86_400_000 }]),
      { label: '1 day', spanMs: 86_400_000 },
    ];
    const timings: Timing[] = [];
    for (const s of spans) {
      const from = to - s.spanMs;
      // What the route does for ?buckets=500: the step asked, then the level and its rounding.
      const p = planHistory({ from, to, stepMs: Math.ceil(s.spanMs / BUCKETS), now, maxBuckets: 2000 }, DEFAULT_RETENTION);
      const q = { device: DEVICE, points: POINTS };
      const runs: number[] = [];
      let answer: Awaited<ReturnType<typeof historyBuckets>> = {};
      for (let k = 0; k < RUNS; k++) {
        const [ms, series] = await time(() => historyBuckets(database, p, q));
        runs.push(ms);
        answer = series;
      }
      // The same buckets over the raw rows, in SQL (one run: seconds for a month).
      const [rawMs, raw] = await time(() => readingBuckets(database, { ...q, from: p.from, to: p.to, stepMs: p.stepMs }));
      const same = POINTS.every((pt) => answer[pt].length === raw[pt].length && answer[pt].every((b, i) => b.t === raw[pt][i].t && b.min === raw[pt][i].min
        && b.max === raw[pt][i].max && b.count === raw[pt][i].count && Math.abs(b.mean - raw[pt][i].mean) <= 1e-9 * Math.max(1, Math.abs(b.mean))));
      const t: Timing = { label: s.label, level: p.level === 'raw' ? 'raw' : p.level.name, stepMs: p.stepMs, rows: answer.level_m.reduce((a, b) => a + b.count, 0), rollupMs: runs, rawMs, same };
      log(`   ${s.label}: ${t.level} rollups, step ${p.stepMs} ms: ${runs.map((x) => x.toFixed(1)).join(', ')} ms; raw rows in SQL ${rawMs.toFixed(0)} ms; same answer: ${same}`);
      timings.push(t);
    }
    return section(days, total, writeS, plan, timings);
  } finally {
    await database.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

function section(days: number, total: number, writeS: number, plan: string[], timings: Timing[]): string {
  const rows = timings.map((t) => {
    const b = median(t.rollupMs);
    return `| ${t.label} | ${t.level} | ${t.stepMs.toLocaleString('en-US')} | ${t.rows.toLocaleString('en-US')} | ${b.toFixed(1)} ms | ${t.rawMs.toFixed(0)} ms | ${(t.rawMs / b).toFixed(0)}× | ${t.same ? 'yes' : 'NO'} |`;
  });
  const month = timings[0];
  const m = median(month.rollupMs);
  const met = m < TARGET_MS && month.rawMs / m >= TARGET_RATIO;
  return [
    HISTORY_HEADING, '',
    'Generated by `npm run bench -- --only history` (bench/history-bench.ts).', '',
    '### Machine', '', machine(), '',
    '### Method', '',
    `- ${total.toLocaleString('en-US')} readings of one water-level sensor, one a second for ${days} days (\`{"level_m", "battery_pct"}\` as JSON text),`,
    `  stored into a temp SQLite file with the cloud's migrations through the store's functions (raw rows and minute and hour`,
    `  rollups, 50,000 readings a transaction; in ${writeS.toFixed(0)} s), then \`ANALYZE\`.`,
    `- Rollups: the answer behind \`GET /api/devices/:id/readings?buckets=${BUCKETS}\` from the level the route picks`,
    '  (cloud/db/rollup-buckets.ts: under a minute raw, under an hour minute rollups, else hour rollups; the step rounded up',
    `  to a whole number of the level), through Kysely and better-sqlite3; ${RUNS} runs, the median shown.`,
    '- Raw rows: the same buckets (same from, to, step) aggregated in SQL over the raw rows (cloud/db/reading-buckets.ts,',
    '  json_each, 6-hour slices), what the route did before the rollups; one run. "Same answer": min, max, count equal',
    '  and mean within 1e-9 relative in every bucket of both points.',
    `- Query plan (hour rollups): \`${plan.join(' | ')}\`.`, '',
    '### Results', '',
    '| span | level | step (ms) | readings aggregated | rollups (500) | raw rows in SQL | raw / rollups | same answer |',
    '|---|---|---:|---:|---:|---:|---:|---|',
    ...rows, '',
    `Target for the month: under ${TARGET_MS} ms and at least ${TARGET_RATIO}× faster than raw: ${met ? 'met' : 'NOT met'} (${m.toFixed(1)} ms, ${(month.rawMs / m).toFixed(0)}×).`, '',
    '### Reproduce', '',
    '```sh',
    'npm run bench -- --only history        # ~1-3 min; rewrites this section',
    'npm run bench -- --only history --quick # three days, not written',
    '```', '',
  ].join('\n');
}

/** Replaces the history section of RESULTS.md (from its heading to the next `## `), or appends it. */
export function writeHistorySection(text: string): void {
  const url = new URL('RESULTS.md', import.meta.url);
  const doc = existsSync(url) ? readFileSync(url, 'utf8') : '# CitySteward benchmarks\n\n';
  const start = doc.indexOf(`${HISTORY_HEADING}\n`);
  if (start < 0) return writeFileSync(url, `${doc.trimEnd()}\n\n${text.trimEnd()}\n`);
  const next = doc.indexOf('\n## ', start + HISTORY_HEADING.length);
  writeFileSync(url, `${doc.slice(0, start)}${text.trimEnd()}\n${next < 0 ? '' : doc.slice(next)}`);
}
