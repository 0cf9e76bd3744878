import { readdirSync, readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { createCloudMetrics, type CloudStats } from '../../cloud/metrics.ts';
import { createEdgeMetrics } from '../../edge/metrics.ts';
import type { EdgeHealth } from '../../edge/health.ts';
import { createGatewayMetrics } from '../../gateway/metrics.ts';
import { loadProfiles } from '../../devices/profile.ts';

/**
 * The Grafana dashboard (deploy/grafana/citysteward.json) queries only what exists: every Prometheus
 * metric it names is registered by the cloud, the broker or the edge (or counted by the notification
 * flow), with the labels it groups and filters by; every InfluxDB measurement and field it reads is a
 * device kind and a numeric point of that kind's profile (cloud/influx/sink.ts writes them so).
 */

const ROOT = new URL('../../', import.meta.url);
const dashboard = JSON.parse(readFileSync(new URL('deploy/grafana/citysteward.json', ROOT), 'utf8')) as {
  panels: { title: string; type: string; datasource?: { type: string }; targets?: { expr?: string; query?: string }[] }[];
  templating: { list: { name: string; query?: string }[] };
};

interface Known { labels: Set<string>; histogram: boolean }

/** Metric names and their labels from the registries the processes build, and from the flows' Prometheus text. */
function knownMetrics(): Map<string, Known> {
  const registries = [
    createCloudMetrics(() => ({}) as CloudStats).registry,
    createGatewayMetrics({ defaultMetrics: true }).registry,
    createEdgeMetrics({ health: () => ({}) as EdgeHealth, mqttConnected: () => false, polling: () => false }).registry,
  ];
  const out = new Map<string, Known>();
  for (const r of registries) {
    for (const m of r.getMetricsAsArray() as unknown as { name: string; labelNames: string[]; type?: string }[]) {
      out.set(m.name, { labels: new Set(m.labelNames), histogram: m.type === 'histogram' });
    }
  }
  // The notification flow counts in Node-RED and serves its own Prometheus text (flows/README.md).
  const flowDir = new URL('flows/flows/', ROOT);
  for (const f of readdirSync(flowDir).filter((n) => n.endsWith('.json'))) {
    const nodes = JSON.parse(readFileSync(new URL(f, flowDir), 'utf8')) as { type: string; func?: string }[];
    for (const n of nodes.filter((x) => x.type === 'function' && x.func)) {
      for (const [, name] of n.func!.matchAll(/# TYPE (\w+) counter/g)) {
        const labels = /LABELS = (\[[^\]]*\])/.exec(n.func!)?.[1];
        out.set(name, { labels: new Set(labels ? (JSON.parse(labels.replace(/'/g, '"')) as string[]) : []), histogram: false });
      }
    }
  }
  return out;
}

/** The series a histogram exposes besides its name. */
const HISTOGRAM_SUFFIX = /_(bucket|sum|count)$/;
/** Labels Prometheus adds to every scraped series. */
const TARGET_LABELS = new Set(['instance', 'job']);

describe('the Grafana dashboard', () => {
  const known = knownMetrics();
  const prometheus = dashboard.panels.filter((p) => p.datasource?.type === 'prometheus');
  const influx = dashboard.panels.filter((p) => p.datasource?.type === 'influxdb');

  it('has Prometheus panels for the cloud, the broker and the edge, and InfluxDB panels for readings', () => {
    const exprs = prometheus.flatMap((p) => p.targets!.map((t) => t.expr!));
    for (const prefix of ['cs_cloud_', 'cs_gateway_', 'cs_edge_']) expect(exprs.some((e) => e.includes(prefix)), prefix).toBe(true);
    // Notifications by channel: the cloud's counter, which the notification flow reports to.
    expect(exprs.some((e) => e.includes('cs_cloud_notifications_total'))).toBe(true);
    expect(influx.length).toBeGreaterThan(0);
    expect(known.size).toBeGreaterThan(30);
  });

  it('queries only metrics that are registered, with their labels', () => {
    const problems: string[] = [];
    for (const p of prometheus) {
      for (const t of p.targets ?? []) {
        const expr = t.expr ?? '';
        const names = [...expr.matchAll(/\bcs_[a-z0-9_]+/g)].map((m) => m[0]);
        if (!names.length) problems.push(`${p.title}: no cs_ metric in ${expr}`);
        const labels = new Set<string>(['le']);
        for (const series of names) {
          const base = known.has(series) ? series : series.replace(HISTOGRAM_SUFFIX, '');
          const k = known.get(base);
          if (!k || (base !== series && !k.histogram)) { problems.push(`${p.title}: ${series} is not registered`); continue; }
          for (const l of k.labels) labels.add(l);
        }
        const used = [
          ...[...expr.matchAll(/\bby \(([^)]*)\)/g)].flatMap((m) => m[1].split(',').map((s) => s.trim())),
          ...[...expr.matchAll(/\{([^}]*)\}/g)].flatMap((m) => [...m[1].matchAll(/(\w+)\s*=~?/g)].map((x) => x[1])),
        ];
        for (const l of used) if (!labels.has(l) && !TARGET_LABELS.has(l)) problems.push(`${p.title}: label ${l} is not on ${names.join(', ')}`);
      }
    }
    expect(problems).toEqual([]);
  });

  it('reads InfluxDB measurements and fields the sink writes: device kinds and their numeric points', () => {
    const kinds = new Map([...loadProfiles().values()].map((p) => [p.kind, new Set(p.points.filter((pt) => pt.type !== 'bits' && pt.type !== 'string').map((pt) => pt.key))]));
    const problems: string[] = [];
    for (const p of influx) {
      for (const t of p.targets ?? []) {
        const m = /r\._measurement == "([^"]+)" and r\._field == "([^"]+)"/.exec(t.query ?? '');
        if (!m) { problems.push(`${p.title}: no measurement and field filter`); continue; }
        if (!kinds.get(m[1])?.has(m[2])) problems.push(`${p.title}: ${m[1]}.${m[2]} is not a numeric point of a profile of that kind`);
        if (!/\btag(Values)?\b|r\.device\b/.test(t.query!) || !t.query!.includes('${bucket}')) problems.push(`${p.title}: not by the device tag in the chosen bucket`);
      }
    }
    expect(problems).toEqual([]);
    expect(dashboard.templating.list.find((v) => v.name === 'device')?.query).toMatch(/tag: "device"/);
  });
});
