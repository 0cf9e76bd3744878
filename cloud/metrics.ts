/**
 * Prometheus metrics of one cloud instance (prom-client), on a registry of its own so that several
 * clouds in one process (tests, the demo) never share counters. The counters are the ingest counters
 * (`cloud.stats()`) and the case clock's, read when scraped; case gauges are counted in SQL when
 * scraped; latencies are histograms observed as they happen. Served at `GET /metrics` (admin,
 * operator; README "The API", "Metrics").
 */
import { monitorEventLoopDelay, type IntervalHistogram } from 'node:perf_hooks';
import type { Kysely } from 'kysely';
import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import { CASE_CLASSES, CASE_STATES, NOTIFICATION_CHANNELS, NOTIFICATION_OUTCOMES, RUNNING_STATES, type NotificationChannel, type NotificationOutcome } from '../lib/vocabulary.ts';
import type { DB } from './db/schema.ts';
import type { IngestStats } from './ingest.ts';
import type { BatchObserver } from './ingest-batch.ts';
import type { EdgeAlarmStats } from './edge-alarms/ingest.ts';
import { scrapeSnapshot } from '../lib/scrape-snapshot.ts';

export type CloudStats = IngestStats & { edgeAlarms: EdgeAlarmStats };

/** What the metrics read besides the ingest counters; each is optional (its metrics stay empty). */
export interface CloudMetricSources {
  /** The database the case gauges are counted in, when scraped. */
  db?: () => Kysely<DB>;
  now?: () => number;
  /** Reminders and escalation steps made by this worker's case clock. */
  caseClock?: () => { reminders: number; escalations: number } | undefined;
  /** Live event streams (`GET /api/events`) open now. */
  liveStreams?: () => number;
  /** The InfluxDB sink's queue (cloud/influx/sink.ts), when the sink is on. */
  influxQueue?: () => { queued: number; dropped: number; sent: number; failures: number };
}

export interface CloudMetrics {
  readonly registry: Registry;
  /** The Prometheus text exposition and its content type. */
  scrape(): Promise<{ contentType: string; body: string }>;
  /** Ingest latency (receive to commit) and batch commit times, from the batched ingest. */
  readonly ingest: BatchObserver;
  /** One query through the database layer took `ms`. */
  query(ms: number, ok: boolean): void;
  /** The notification flow reported `n` notifications on `channel` with `outcome` (POST /api/notifications/outcomes). */
  notified(channel: NotificationChannel, outcome: NotificationOutcome, n?: number): void;
}

/** The event loop's delay, process-wide (every cloud in a process shares the loop): enabled once, on first use. */
let loopDelay: IntervalHistogram | undefined;
const LOOP_RESOLUTION_MS = 10;

const LATENCY_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5];

export function createCloudMetrics(stats: () => CloudStats, sources: CloudMetricSources = {}): CloudMetrics {
  const registry = new Registry();
  const registers = [registry];
  const { current, scrape } = scrapeSnapshot<CloudStats>(registry, () => stats());

  /** A counter whose value is read from the stats when scraped, per label set. */
  function mirror<L extends string>(name: string, help: string, labelNames: L[], read: (s: CloudStats) => [Partial<Record<L, string>>, number][]): void {
    new Counter<L>({
      name, help, labelNames, registers,
      collect() {
        this.reset();
        for (const [labels, value] of read(current())) this.inc(labels as Record<L, string>, value);
      },
    });
  }
  const byReason = (r: Record<string, number>): [{ reason: string }, number][] => Object.entries(r).map(([reason, n]) => [{ reason }, n]);

  mirror('cs_cloud_readings_total', 'Readings by outcome (stored, duplicate, conflict, failed)', ['outcome'], (s) => [
    [{ outcome: 'stored' }, s.stored], [{ outcome: 'duplicate' }, s.duplicates], [{ outcome: 'conflict' }, s.conflicts], [{ outcome: 'failed' }, s.failed],
  ]);
  mirror('cs_cloud_reading_conflicts_total', 'Readings whose key was stored with another payload (the first kept)', [], (s) => [[{}, s.conflicts]]);
  mirror('cs_cloud_readings_rejected_total', 'Rejected readings, by reason', ['reason'], (s) => byReason(s.rejected));
  mirror('cs_cloud_cases_total', 'Cases opened or updated by readings', ['action'], (s) => [[{ action: 'opened' }, s.casesOpened], [{ action: 'updated' }, s.casesUpdated]]);
  mirror('cs_cloud_edge_alarms_total', 'Edge alarms by outcome (stored, duplicate, conflict, failed, raised, merged)', ['outcome'], (s) => [
    [{ outcome: 'stored' }, s.edgeAlarms.stored], [{ outcome: 'duplicate' }, s.edgeAlarms.duplicates], [{ outcome: 'conflict' }, s.edgeAlarms.conflicts],
    [{ outcome: 'failed' }, s.edgeAlarms.failed], [{ outcome: 'raised' }, s.edgeAlarms.raised], [{ outcome: 'merged' }, s.edgeAlarms.merged],
  ]);
  mirror('cs_cloud_edge_alarm_conflicts_total', 'Edge alarms whose key was stored with another payload (the first kept)', [], (s) => [[{}, s.edgeAlarms.conflicts]]);
  mirror('cs_cloud_edge_alarms_rejected_total', 'Rejected edge alarms, by reason', ['reason'], (s) => byReason(s.edgeAlarms.rejected));
  mirror('cs_cloud_warnings_suppressed_total', 'Warning lines about a gateway\'s bad messages left out by the per-gateway limit', ['path'], (s) => [
    [{ path: 'readings' }, s.warningsSuppressed], [{ path: 'edge-alarms' }, s.edgeAlarms.warningsSuppressed],
  ]);

  const caseClock = () => sources.caseClock?.() ?? { reminders: 0, escalations: 0 };
  mirror('cs_cloud_case_reminders_total', 'Reminders of a near deadline sent by this worker\'s case clock', [], () => [[{}, caseClock().reminders]]);
  mirror('cs_cloud_case_escalations_total', 'Escalation steps made by this worker\'s case clock', [], () => [[{}, caseClock().escalations]]);

  const db = sources.db;
  const now = sources.now ?? Date.now;
  new Gauge<'state' | 'class'>({
    name: 'cs_cloud_cases', help: 'Cases by state and class (counted in the database when scraped)', labelNames: ['state', 'class'], registers,
    async collect() {
      this.reset();
      if (!db) return;
      const rows = await db().selectFrom('cases').select(['state', 'class', (eb) => eb.fn.countAll<number>().as('n')]).groupBy(['state', 'class']).execute();
      for (const state of CASE_STATES) for (const cls of CASE_CLASSES) this.set({ state, class: cls }, 0);
      for (const r of rows) this.set({ state: r.state, class: r.class }, Number(r.n));
    },
  });
  new Gauge<'class'>({
    name: 'cs_cloud_cases_overdue', help: 'Running cases (registered, dispatched, accepted) past their deadline, by class', labelNames: ['class'], registers,
    async collect() {
      this.reset();
      if (!db) return;
      const rows = await db().selectFrom('cases').select(['class', (eb) => eb.fn.countAll<number>().as('n')])
        .where('state', 'in', [...RUNNING_STATES]).where('deadline_at', '<', now()).groupBy('class').execute();
      for (const cls of CASE_CLASSES) this.set({ class: cls }, 0);
      for (const r of rows) this.set({ class: r.class }, Number(r.n));
    },
  });
  new Gauge({
    name: 'cs_cloud_sse_clients', help: 'Live event streams (GET /api/events) open now', registers,
    collect() { this.set(sources.liveStreams?.() ?? 0); },
  });

  new Gauge({
    name: 'cs_cloud_influx_queue_points', help: 'Points waiting in the InfluxDB sink\'s disk queue (0 when the sink is off)', registers,
    collect() { this.set(sources.influxQueue?.().queued ?? 0); },
  });
  const influx = () => sources.influxQueue?.() ?? { queued: 0, dropped: 0, sent: 0, failures: 0 };
  mirror('cs_cloud_influx_points_total', 'InfluxDB sink points by outcome: sent (acknowledged), dropped (oldest, queue over its cap)', ['outcome'], () => [
    [{ outcome: 'sent' }, influx().sent], [{ outcome: 'dropped' }, influx().dropped],
  ]);
  mirror('cs_cloud_influx_write_failures_total', 'InfluxDB write requests that failed (retried with back-off)', [], () => [[{}, influx().failures]]);

  loopDelay ??= (() => { const h = monitorEventLoopDelay({ resolution: LOOP_RESOLUTION_MS }); h.enable(); return h; })();
  const loop = loopDelay;
  new Gauge<'stat'>({
    name: 'cs_cloud_event_loop_lag_seconds', help: 'Event loop delay since the previous scrape (p50, p99, max; process-wide)', labelNames: ['stat'], registers,
    collect() {
      // The histogram records whole timer intervals: the lag is what exceeds the resolution.
      const ns = (v: number) => (Number.isFinite(v) ? Math.max(0, v - LOOP_RESOLUTION_MS * 1e6) / 1e9 : 0);
      this.set({ stat: 'p50' }, ns(loop.percentile(50)));
      this.set({ stat: 'p99' }, ns(loop.percentile(99)));
      this.set({ stat: 'max' }, ns(loop.max));
      loop.reset();
    },
  });

  const latency = new Histogram({ name: 'cs_cloud_ingest_latency_seconds', help: 'Reading received to its batch committed', registers, buckets: LATENCY_BUCKETS });
  const commit = new Histogram({ name: 'cs_cloud_db_batch_commit_seconds', help: 'One ingest batch\'s write transaction (lock wait, store, rules, commit)', registers, buckets: LATENCY_BUCKETS });
  const batchSize = new Histogram({ name: 'cs_cloud_db_batch_readings', help: 'Readings per ingest batch', registers, buckets: [1, 2, 4, 8, 16, 32, 64, 128, 256, 512] });
  const queries = new Histogram<'outcome'>({ name: 'cs_cloud_db_query_seconds', help: 'Queries through the database layer (Kysely), by outcome (ok, error)', labelNames: ['outcome'], registers, buckets: LATENCY_BUCKETS });

  const notifications = new Counter<'channel' | 'outcome'>({
    name: 'cs_cloud_notifications_total', help: 'Case notifications by channel and outcome (sent, failed), as the notification flow reports them', labelNames: ['channel', 'outcome'], registers,
  });
  for (const channel of NOTIFICATION_CHANNELS) for (const outcome of NOTIFICATION_OUTCOMES) notifications.inc({ channel, outcome }, 0);

  return {
    registry,
    notified: (channel, outcome, n = 1) => notifications.inc({ channel, outcome }, n),
    ingest: {
      committed: (ms) => latency.observe(ms / 1000),
      batch: (ms, n) => { commit.observe(ms / 1000); batchSize.observe(n); },
    },
    query: (ms, ok) => queries.observe({ outcome: ok ? 'ok' : 'error' }, ms / 1000),
    scrape,
  };
}
