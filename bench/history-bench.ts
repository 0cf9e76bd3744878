/**
 * A device's history for a chart (README "Devices for the operator"): a month of one-second
 * readings of one water-level sensor (2,592,000 rows) in a temp SQLite database with the cloud's
 * schema, then GET /api/devices/:id/readings?buckets=500's query (cloud/db/reading-buckets.ts) timed
 * against reading every raw row of the month and aggregating in JavaScript (what a client would do
 * without it). Also the query plan (it must walk readings_device_ts) and a week's and a day's span.
 * `--quick`: three days instead of a month.
 */
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sql } from 'kysely';
import { Sqlite } from '../lib/sqlite.ts';
import { openDatabase } from '../cloud/db/database.ts';
import { bucketStatement, readingBuckets } from '../cloud/db/reading-buckets.ts';
import { machine } from './report.ts';

export const HISTORY_HEADING = '## Device history: a month of 1 s readings in 500 buckets';

const DEVICE = 'XZ-WL-001';
const T0 = Date.parse('2026-09-01T00:00:00Z');
const BUCKETS = 500;
const POINTS = ['level_m', 'battery_pct'];

interface Timing { label: string; spanMs: number; rows: number; bucketedMs: number[]; rawMs?: number }

async function time<T>(fn: () => Promise<T>): Promise<[number, T]> {
  const t = performance.now();
  const v = await fn();
  return [performance.now() - t, v];
}

/** The middle run (of two, the slower). */
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

export async function historyBench(quick: boolean, log: (s: string) => void): Promise<string> {
  const days = quick ? 3 : 30;
  const total = days * 86_400;
  const dir = mkdtempSync(join(tmpdir(), 'cs-history-'));
  const file = join(dir, 'cs.db');
  try {
    const setup = openDatabase({ kind: 'sqlite', file });
    await setup.migrate();
    await setup.close();

    log(`-- history: writing ${total.toLocaleString('en-US')} readings (${days} days at 1 s)`);
    const raw = new Sqlite(file);
    raw.pragma('journal_mode = WAL');
    raw.pragma('synchronous = OFF');
    const insert = raw.prepare(`insert into readings (gateway, stream, device, seq, ts, received_at, values_json, quality, historical)
      values ('gw-xz-jida', '', ?, ?, ?, ?, ?, 'good', 0)`);
    const started = performance.now();
    const batch = raw.transaction((from: number, to: number) => {
      for (let i = from; i < to; i++) {
        const ts = T0 + i * 1000;
        // A tide-like level and a slowly draining battery, both numbers, as the edge sends them.
        const level = Math.round((0.3 + 0.2 * Math.sin(i / 22_357) + ((i * 7919) % 100) / 2000) * 1000) / 1000;
        insert.run(DEVICE, i + 1, ts, ts + 40, `{"level_m":${level},"battery_pct":${100 - Math.floor(i / total * 30)}}`);
      }
    });
    for (let i = 0; i < total; i += 100_000) batch(i, Math.min(total, i + 100_000));
    raw.exec('analyze');
    raw.close();
    const writeS = (performance.now() - started) / 1000;
    log(`   written in ${writeS.toFixed(1)} s`);

    const database = openDatabase({ kind: 'sqlite', file });
    try {
      const plan = (await sql<{ detail: string }>`explain query plan ${bucketStatement('sqlite', { device: DEVICE, from: T0, to: T0 + total * 1000, stepMs: 1000, points: POINTS })}`.execute(database.db)).rows.map((r) => r.detail);
      log(`   plan: ${plan.join(' | ')}`);
      const spans = [
        { label: `${days} days`, spanMs: total * 1000 },
        ...(quick ? [] : [{ label: '7 days', spanMs: 7 * 86_400_000 }]),
        { label: '1 day', spanMs: 86_400_000 },
      ];
      const timings: Timing[] = [];
      for (const s of spans) {
        const to = T0 + total * 1000;
        const from = to - s.spanMs;
        const stepMs = Math.ceil(s.spanMs / BUCKETS);
        const runs: number[] = [];
        let rows = 0;
        // Fewer runs of the long spans: the bench stays near two minutes on a shared machine.
        const repeats = s.spanMs > 86_400_000 ? 2 : 3;
        for (let k = 0; k < repeats; k++) {
          const [ms, series] = await time(() => readingBuckets(database, { device: DEVICE, from, to, stepMs, points: POINTS }));
          runs.push(ms);
          rows = series.level_m.reduce((a, b) => a + b.count, 0);
        }
        const t: Timing = { label: s.label, spanMs: s.spanMs, rows, bucketedMs: runs };
        if (s.spanMs === total * 1000 || s.label === '1 day') {
          // The comparison: every raw row of the span read and aggregated in JavaScript.
          const [ms] = await time(async () => {
            const rs = await database.db.selectFrom('readings').select(['ts', 'values_json']).where('device', '=', DEVICE).where('ts', '>=', from).where('ts', '<', to).orderBy('ts').execute();
            const acc = new Map<number, { min: number; max: number; sum: number; n: number }>();
            for (const r of rs) {
              const v = (JSON.parse(r.values_json) as Record<string, unknown>).level_m;
              if (typeof v !== 'number') continue;
              const b = Math.floor((Number(r.ts) - from) / stepMs);
              const a = acc.get(b);
              if (a) { a.min = Math.min(a.min, v); a.max = Math.max(a.max, v); a.sum += v; a.n++; } else acc.set(b, { min: v, max: v, sum: v, n: 1 });
            }
            return acc.size;
          });
          t.rawMs = ms;
        }
        log(`   ${s.label}: buckets ${runs.map((x) => x.toFixed(0)).join(', ')} ms${t.rawMs !== undefined ? `; raw rows ${t.rawMs.toFixed(0)} ms` : ''}`);
        timings.push(t);
      }
      return section(days, total, writeS, plan, timings);
    } finally {
      await database.close();
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

function section(days: number, total: number, writeS: number, plan: string[], timings: Timing[]): string {
  const rows = timings.map((t) => {
    const b = median(t.bucketedMs);
    return `| ${t.label} | ${t.rows.toLocaleString('en-US')} | ${b.toFixed(0)} ms | ${t.rawMs === undefined ? '—' : `${t.rawMs.toFixed(0)} ms`} | ${t.rawMs === undefined ? '—' : `${(t.rawMs / b).toFixed(1)}×`} |`;
  });
  return [
    HISTORY_HEADING, '',
    'Generated by `npm run bench -- --only history` (bench/history-bench.ts).', '',
    '### Machine', '', machine(), '',
    '### Method', '',
    `- ${total.toLocaleString('en-US')} readings of one water-level sensor, one a second for ${days} days (\`{"level_m", "battery_pct"}\` as JSON text),`,
    `  written into a temp SQLite file with the cloud's migrations (in ${writeS.toFixed(0)} s), then \`ANALYZE\`.`,
    `- Bucketed: the query behind \`GET /api/devices/:id/readings?buckets=${BUCKETS}\` (cloud/db/reading-buckets.ts: min, max, mean,`,
    '  count per numeric point per bucket, in SQL, read in 6-hour slices), through Kysely and better-sqlite3; two runs',
    '  for spans over a day, three for a day; the median (the slower of two) shown.',
    '- Raw: every row of the span read through the same driver and aggregated in JavaScript (`JSON.parse` per row),',
    '  the work a chart would do without the aggregation; one run.',
    `- Query plan: \`${plan.join(' | ')}\`.`, '',
    '### Results', '',
    '| span | readings aggregated | bucketed (500) | raw rows + JS | raw / bucketed |',
    '|---|---:|---:|---:|---:|',
    ...rows, '',
    '### Reproduce', '',
    '```sh',
    'npm run bench -- --only history        # ~1-2 min; rewrites this section',
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
