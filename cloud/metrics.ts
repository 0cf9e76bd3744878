/**
 * Prometheus metrics of one cloud instance (prom-client), on a registry of its own so that several
 * clouds in one process (tests, the demo) never share counters. The values are the ingest counters
 * (`cloud.stats()`), read when scraped. Served at `GET /metrics` (admin, operator; README "The API").
 */
import { Counter, Registry } from 'prom-client';
import type { IngestStats } from './ingest.ts';
import type { EdgeAlarmStats } from './edge-alarms/ingest.ts';

export type CloudStats = IngestStats & { edgeAlarms: EdgeAlarmStats };

export interface CloudMetrics {
  readonly registry: Registry;
  /** The Prometheus text exposition and its content type. */
  scrape(): Promise<{ contentType: string; body: string }>;
}

export function createCloudMetrics(stats: () => CloudStats): CloudMetrics {
  const registry = new Registry();
  const registers = [registry];
  let snapshot: CloudStats | undefined;
  const current = (): CloudStats => (snapshot ??= stats());

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

  return {
    registry,
    async scrape() {
      snapshot = undefined;
      try {
        return { contentType: registry.contentType, body: await registry.metrics() };
      } finally {
        snapshot = undefined;
      }
    },
  };
}
