import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { ConfigError } from '../../lib/config.ts';
import { loadProfiles } from '../../devices/profile.ts';
import { buildSimulator, type Simulator } from '../../devices/simulator.ts';
import { buildEdge, type Edge } from '../../edge/edge.ts';
import { validateEdgeConfig, type EdgeConfigInput } from '../../edge/config.ts';
import { recordingBroker, until, type RecordingBroker } from './helpers.ts';
import { metric } from '../helpers/metrics.ts';

/**
 * The edge's local HTTP port (README "Edge gateway"): /metrics moves with the polls, faults and
 * publishes it does, /healthz turns 503 when the broker goes away. A real Modbus TCP simulator and
 * a real broker on loopback; unit 9 has no device behind the simulator, which answers exception 0x0B.
 */

const profiles = loadProfiles();
const GW = 'gw-metrics';
const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'cs-edge-metrics-'));
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

async function setup(): Promise<{ broker: RecordingBroker; sim: Simulator; edge: Edge; base: string }> {
  const broker = await recordingBroker();
  cleanups.push(() => broker.stop());
  const sim = buildSimulator({ port: 0, devices: [{ id: 'WL-1', profile: profiles.get('water-level')!, unitId: 1 }] });
  await sim.start();
  cleanups.push(() => sim.stop());
  const config: EdgeConfigInput = {
    gateway: GW,
    mqtt: { url: broker.url, username: GW, password: 'pw', keepaliveS: 5 },
    pollMs: 60_000,
    healthMs: 0,
    http: { port: 0 },
    buses: [{ id: 'bus-a', host: '127.0.0.1', port: sim.port, timeoutMs: 500 }],
    devices: [
      { id: 'WL-1', profile: 'water-level', bus: 'bus-a', unitId: 1 },
      { id: 'GHOST', profile: 'water-level', bus: 'bus-a', unitId: 9 },
    ],
    outbox: { kind: 'memory' },
  };
  const edge = buildEdge({ config, profiles, dataDir: tempDir(), reconnectMs: 100 });
  cleanups.push(() => edge.stop());
  await edge.start();
  const addr = edge.httpAddress()!;
  return { broker, sim, edge, base: `http://${addr.host}:${addr.port}` };
}

async function scrape(base: string): Promise<string> {
  const res = await fetch(`${base}/metrics`);
  expect(res.status).toBe(200);
  expect(res.headers.get('content-type')).toMatch(/^text\/plain/);
  return res.text();
}

describe('edge metrics and health endpoints', () => {
  it('counts polls, faults by slave and kind, poll time and publishes as the edge polls', async () => {
    const { edge, base } = await setup();
    await edge.pollNow();
    await edge.drained();
    const before = await scrape(base);
    for (let i = 0; i < 3; i += 1) await edge.pollNow();
    expect(await edge.drained()).toBe(true);
    const after = await scrape(base);

    const wl = { bus: 'bus-a', device: 'WL-1', unit: '1' };
    const ghost = { bus: 'bus-a', device: 'GHOST', unit: '9' };
    expect(metric(after, 'cs_edge_polls_total', wl) - metric(before, 'cs_edge_polls_total', wl)).toBe(3);
    expect(metric(after, 'cs_edge_poll_faults_total', { ...ghost, kind: 'exception' })).toBeGreaterThan(metric(before, 'cs_edge_poll_faults_total', { ...ghost, kind: 'exception' }));
    expect(metric(after, 'cs_edge_poll_faults_total', { ...wl, kind: 'timeout' })).toBe(0);
    expect(metric(after, 'cs_edge_poll_duration_seconds_count', { bus: 'bus-a' })).toBeGreaterThan(metric(before, 'cs_edge_poll_duration_seconds_count', { bus: 'bus-a' }));
    // Each pollNow() is one pass over bus-a (both slaves polled once).
    expect(metric(after, 'cs_edge_poll_pass_seconds_count', { bus: 'bus-a' }) - metric(before, 'cs_edge_poll_pass_seconds_count', { bus: 'bus-a' })).toBe(3);
    expect(metric(after, 'cs_edge_poll_pass_seconds_sum', { bus: 'bus-a' })).toBeGreaterThan(metric(before, 'cs_edge_poll_pass_seconds_sum', { bus: 'bus-a' }));
    expect(metric(after, 'cs_edge_readings_total', { outcome: 'published' }) - metric(before, 'cs_edge_readings_total', { outcome: 'published' })).toBe(3);
    // Three consecutive faults open GHOST's breaker (the default breaker.failures); WL-1's stays closed.
    expect(metric(after, 'cs_edge_breaker_state', { ...ghost, state: 'open' })).toBe(1);
    expect(metric(after, 'cs_edge_breaker_state', { ...wl, state: 'closed' })).toBe(1);
    expect(metric(after, 'cs_edge_mqtt_connected')).toBe(1);
    expect(metric(after, 'cs_edge_bus_link_open', { bus: 'bus-a' })).toBe(1);
    expect(metric(after, 'cs_edge_outbox_depth')).toBe(0);
    expect(after).toContain('# TYPE cs_edge_polls_total counter');
  });

  it('shows the outbox growing and ageing while the broker is away, and /healthz turns 503 naming why', async () => {
    const { broker, edge, base } = await setup();
    await edge.pollNow();
    const ok = await fetch(`${base}/healthz`);
    expect(ok.status).toBe(200);
    expect(await ok.json()).toEqual({ ok: true, reasons: [] });

    await broker.stop();
    await until(async () => (await fetch(`${base}/healthz`)).status === 503);
    const down = await fetch(`${base}/healthz`);
    expect(((await down.json()) as { reasons: string[] }).reasons).toContain('mqtt not connected');
    await edge.pollNow();
    await new Promise((r) => setTimeout(r, 50));
    const body = await scrape(base);
    expect(metric(body, 'cs_edge_mqtt_connected')).toBe(0);
    expect(metric(body, 'cs_edge_outbox_depth')).toBeGreaterThanOrEqual(1);
    expect(metric(body, 'cs_edge_outbox_oldest_age_seconds')).toBeGreaterThan(0);

    await broker.start();
    await until(async () => (await fetch(`${base}/healthz`)).status === 200);
    expect(await edge.drained()).toBe(true);
  });

  it('reports a bus whose slave stopped answering, serves nothing but its two paths, and closes with stop()', async () => {
    const { sim, edge, base } = await setup();
    await edge.pollNow();
    await sim.stop();
    await until(async () => {
      await edge.pollNow();
      return (await fetch(`${base}/healthz`)).status === 503;
    });
    const down = (await (await fetch(`${base}/healthz`)).json()) as { reasons: string[] };
    expect(down.reasons.some((r: string) => r.startsWith('bus bus-a:'))).toBe(true);
    const body = await scrape(base);
    const busDown = metric(body, 'cs_edge_poll_faults_total', { device: 'WL-1', kind: 'busDown' }) + metric(body, 'cs_edge_poll_faults_total', { device: 'WL-1', kind: 'timeout' });
    expect(busDown).toBeGreaterThan(0);
    expect((await fetch(`${base}/`)).status).toBe(404);
    expect((await fetch(`${base}/metrics`, { method: 'POST' })).status).toBe(405);
    await edge.stop();
    expect(edge.httpAddress()).toBeUndefined();
    await expect(fetch(`${base}/healthz`)).rejects.toThrow();
  });

  it('has no HTTP port unless configured, and refuses a bad http key', () => {
    const base = { gateway: GW, mqtt: { url: 'mqtt://127.0.0.1:1', username: GW, password: 'pw' }, buses: [{ id: 'b', port: 502 }], devices: [{ id: 'D', profile: 'water-level', bus: 'b', unitId: 1 }] };
    expect(validateEdgeConfig(base, profiles).http).toBeUndefined();
    expect(validateEdgeConfig({ ...base, http: { port: 9464 } }, profiles).http).toEqual({ port: 9464, host: '127.0.0.1' });
    expect(() => validateEdgeConfig({ ...base, http: { port: 70_000 } }, profiles)).toThrow(ConfigError);
    expect(() => validateEdgeConfig({ ...base, http: { port: 9464, path: '/x' } }, profiles)).toThrow(/http/);
  });
});
