/**
 * Prometheus metrics and readiness of one edge gateway (prom-client), on a registry of its own so that
 * several edges in one process (tests, the demo) never share series. Counters and gauges are read from
 * the edge's health (the message it publishes on cs/v1/{gw}/health) when scraped; only the poll and pass time
 * histograms are observed as polls happen. Served on the optional local port (edge/http.ts, README "Edge gateway").
 */
import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { EdgeHealth } from './health.ts';
import { FAULT_KINDS } from './modbus.ts';
import { scrapeSnapshot } from '../lib/scrape-snapshot.ts';

/** Every fault kind a slave is counted under (edge/poller.ts), in the order of the series. */
export const SLAVE_FAULT_KINDS = [...FAULT_KINDS, 'busDown', 'decode'] as const;
const BREAKER_STATES = ['closed', 'open', 'half-open'] as const;

export interface EdgeMetricsSources {
  health: () => EdgeHealth;
  mqttConnected: () => boolean;
  /** The edge is started and its pollers run. */
  polling: () => boolean;
}

export interface EdgeMetrics {
  readonly registry: Registry;
  /** One device poll that touched its bus took `ms`. */
  observePoll(bus: string, ms: number): void;
  /** One pass over a bus (every device polled once) took `ms`. */
  observePass(bus: string, ms: number): void;
  scrape(): Promise<{ contentType: string; body: string }>;
  /** 200 with no reasons when MQTT is connected and every bus polls; else 503 and why. */
  ready(): { ok: boolean; reasons: string[] };
}

type Slave = EdgeHealth['buses'][string]['slaves'][number];

export function createEdgeMetrics(src: EdgeMetricsSources): EdgeMetrics {
  const registry = new Registry();
  const registers = [registry];
  const { current, scrape } = scrapeSnapshot<EdgeHealth>(registry, () => src.health());
  const slaves = function* (): Generator<[string, Slave]> {
    for (const [bus, b] of Object.entries(current().buses)) for (const s of b.slaves) yield [bus, s];
  };
  const slaveLabels = (bus: string, s: Slave) => ({ bus, device: s.device, unit: String(s.unitId) });

  /** A counter or gauge whose values are read from the health when scraped, per label set. */
  function mirror<L extends string>(kind: 'counter' | 'gauge', name: string, help: string, labelNames: L[], read: () => Iterable<[Partial<Record<L, string>>, number]>): void {
    if (kind === 'gauge') {
      new Gauge<L>({ name, help, labelNames, registers, collect() {
        this.reset();
        for (const [labels, value] of read()) this.set(labels as Record<L, string>, value);
      } });
    } else {
      new Counter<L>({ name, help, labelNames, registers, collect() {
        this.reset();
        for (const [labels, value] of read()) this.inc(labels as Record<L, string>, value);
      } });
    }
  }

  mirror('counter', 'cs_edge_polls_total', 'Device polls answered (decoded) since start, by slave', ['bus', 'device', 'unit'], function* () {
    for (const [bus, s] of slaves()) yield [slaveLabels(bus, s), s.ok];
  });
  mirror('counter', 'cs_edge_poll_faults_total', 'Failed device polls since start, by slave and kind (timeout, crc, exception, wrongUnit, truncated, badFrame, busDown, decode)', ['bus', 'device', 'unit', 'kind'], function* () {
    for (const [bus, s] of slaves()) for (const kind of SLAVE_FAULT_KINDS) yield [{ ...slaveLabels(bus, s), kind }, (s as Record<string, unknown>)[kind] as number ?? 0];
  });
  mirror('counter', 'cs_edge_polls_skipped_total', 'Polls skipped because the slave\'s breaker was open', ['bus', 'device', 'unit'], function* () {
    for (const [bus, s] of slaves()) yield [slaveLabels(bus, s), s.skipped];
  });
  mirror('gauge', 'cs_edge_breaker_state', 'Circuit breaker of each slave: 1 for its current state (closed, open, half-open)', ['bus', 'device', 'unit', 'state'], function* () {
    for (const [bus, s] of slaves()) for (const state of BREAKER_STATES) yield [{ ...slaveLabels(bus, s), state }, s.breaker === state ? 1 : 0];
  });
  mirror('gauge', 'cs_edge_bus_link_open', 'Whether the bus link (TCP connection or serial port) is open', ['bus'], function* () {
    for (const [bus, b] of Object.entries(current().buses)) yield [{ bus }, b.link.open ? 1 : 0];
  });
  mirror('counter', 'cs_edge_bus_link_drops_total', 'Bus links lost since start', ['bus'], function* () {
    for (const [bus, b] of Object.entries(current().buses)) yield [{ bus }, b.link.drops];
  });
  mirror('gauge', 'cs_edge_outbox_depth', 'Readings and alarms in the outbox, not yet acknowledged by the broker', [], () => [[{}, current().outbox.depth]]);
  mirror('gauge', 'cs_edge_outbox_oldest_age_seconds', 'Age of the oldest outbox entry (0 when empty)', [], () => [[{}, (current().outbox.oldestAgeMs ?? 0) / 1000]]);
  mirror('counter', 'cs_edge_outbox_lost_total', 'Outbox entries lost since start, by cause (dropped: full; expired: retention)', ['cause'], () => [
    [{ cause: 'dropped' }, current().outbox.dropped], [{ cause: 'expired' }, current().outbox.expired ?? 0],
  ]);
  mirror('counter', 'cs_edge_readings_total', 'Readings since start: published (acknowledged by the broker) or suppressed (report by exception)', ['outcome'], () => [
    [{ outcome: 'published' }, current().published], [{ outcome: 'suppressed' }, current().suppressed],
  ]);
  mirror('gauge', 'cs_edge_mqtt_connected', 'Whether the MQTT session to the broker is connected', [], () => [[{}, src.mqttConnected() ? 1 : 0]]);
  const pollTime = new Histogram({
    name: 'cs_edge_poll_duration_seconds', help: 'Time of one device poll on its bus (every block read), answered or failed', labelNames: ['bus'], registers,
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
  });
  const passTime = new Histogram({
    name: 'cs_edge_poll_pass_seconds', help: 'Time of one pass over a bus: from its first poll until every device on it was polled once (answered, failed or skipped)', labelNames: ['bus'], registers,
    buckets: [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300],
  });

  return {
    registry,
    observePoll: (bus, ms) => pollTime.observe({ bus }, ms / 1000),
    observePass: (bus, ms) => passTime.observe({ bus }, ms / 1000),
    scrape,
    ready() {
      const reasons: string[] = [];
      if (!src.polling()) reasons.push('edge is not polling');
      if (!src.mqttConnected()) reasons.push('mqtt not connected');
      if (src.polling()) for (const [bus, b] of Object.entries(src.health().buses)) {
        // A link that was tried and is not open now (a link never opened yet is just starting).
        if (!b.link.open && b.link.opens + b.link.openFailures > 0) reasons.push(`bus ${bus}: link down`);
        else if (b.slaves.length > 0 && b.slaves.every((s) => s.breaker !== 'closed')) reasons.push(`bus ${bus}: every slave's breaker is open`);
      }
      return { ok: reasons.length === 0, reasons };
    },
  };
}
