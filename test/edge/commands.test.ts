import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect, type MqttClient } from 'mqtt';
import { afterEach, describe, expect, it } from 'vitest';
import type { CommandAck, GatewayState, Reading } from '../../lib/messages.ts';
import { check } from '../../lib/schema.ts';
import { topics } from '../../lib/topics.ts';
import { loadProfiles } from '../../devices/profile.ts';
import { buildSimulator, type Simulator } from '../../devices/simulator.ts';
import { buildEdge, type Edge } from '../../edge/edge.ts';
import type { EdgeConfigInput } from '../../edge/config.ts';
import { EdgeHealthSchema, type EdgeHealth } from '../../edge/health.ts';
import { recordingBroker, until, type RecordingBroker } from './helpers.ts';

const profiles = loadProfiles();
const GW = 'gw-cmd';
const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'cs-cmd-'));
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

async function setup(extra: Partial<EdgeConfigInput> = {}) {
  const b: RecordingBroker = await recordingBroker();
  cleanups.push(() => b.stop());
  const sim: Simulator = buildSimulator({ port: 0, devices: [
    { id: 'WL-1', profile: profiles.get('water-level')!, unitId: 1 },
    { id: 'MH-1', profile: profiles.get('manhole-cover')!, unitId: 2 },
  ] });
  await sim.start();
  cleanups.push(() => sim.stop());
  const cfg: EdgeConfigInput = {
    gateway: GW,
    mqtt: { url: b.url, username: GW, password: 'pw' },
    // Normal mode polls once a minute: anything faster in these tests is the fast mode's doing.
    pollMs: 60_000,
    healthMs: 0,
    buses: [{ id: 'bus-a', host: '127.0.0.1', port: sim.port, timeoutMs: 500 }],
    devices: [
      { id: 'WL-1', profile: 'water-level', bus: 'bus-a', unitId: 1 },
      { id: 'MH-1', profile: 'manhole-cover', bus: 'bus-a', unitId: 2 },
    ],
    ...extra,
  };
  const dataDir = tempDir();
  const client: MqttClient = connect(b.url, { protocolVersion: 4, clientId: `cloud-${Math.random().toString(16).slice(2)}`, reconnectPeriod: 100 });
  cleanups.push(() => client.endAsync(true));
  await new Promise<void>((resolve) => client.once('connect', () => resolve()));
  const acks: CommandAck[] = [];
  const states: GatewayState[] = [];
  const health: EdgeHealth[] = [];
  client.on('message', (topic, payload) => {
    const json = JSON.parse(payload.toString());
    if (topic === topics.cmdAck(GW)) acks.push(json);
    else if (topic === topics.state(GW)) states.push(json);
    else if (topic === topics.health(GW)) health.push(json);
  });
  await client.subscribeAsync([topics.cmdAck(GW), topics.state(GW), topics.health(GW)], { qos: 1 });
  const edges: Edge[] = [];
  const startEdge = async () => {
    const edge = buildEdge({ config: cfg, profiles, dataDir, reconnectMs: 100 });
    edges.push(edge);
    cleanups.push(() => edge.stop());
    await edge.start();
    return edge;
  };
  const command = async (body: Record<string, unknown>): Promise<CommandAck> => {
    await client.publishAsync(topics.cmd(GW), JSON.stringify(body), { qos: 1 });
    await until(() => acks.some((a) => a.id === body.id));
    return acks.find((a) => a.id === body.id)!;
  };
  const readings = (device: string): Reading[] => b.deliveries.filter((d) => d.reading.device === device).map((d) => d.reading);
  return { b, sim, startEdge, command, readings, acks, states, health, client };
}

describe('edge commands', () => {
  it('switches to fast polling within one poll cycle on set-mode, acknowledges it, and is still fast after a restart', async () => {
    const t = await setup();
    const edge = await t.startEdge();
    await until(() => t.states.some((s) => s.online));
    // The first poll at start (the second device's is spread to half a minute later); then nothing for a minute.
    await until(() => t.readings('WL-1').length >= 1);
    expect(edge.stats().pollMs).toEqual({ 'WL-1': 60_000, 'MH-1': 60_000 });

    const ack = await t.command({ id: 'fast-1', type: 'set-mode', mode: 'fast', pollMs: 200 });
    expect(ack).toMatchObject({ id: 'fast-1', outcome: 'ok' });
    expect(edge.stats()).toMatchObject({ mode: 'fast', pollMs: { 'WL-1': 200, 'MH-1': 200 } });
    const seen = t.readings('WL-1').length;
    // Every device polls on the new interval at once, not after the minute it was waiting for.
    await until(() => t.readings('WL-1').length >= seen + 3 && t.readings('MH-1').length >= 3);

    // A restart (power blink) keeps the mode: the birth says so and the polling stays fast.
    await edge.stop();
    const births = t.states.filter((s) => s.online).length;
    const again = await t.startEdge();
    expect(again.stats()).toMatchObject({ mode: 'fast', pollMs: { 'WL-1': 200 } });
    await until(() => t.states.filter((s) => s.online).length > births);
    expect(t.states.filter((s) => s.online).at(-1)).toMatchObject({ mode: 'fast' });
    const afterRestart = t.readings('WL-1').length;
    await until(() => t.readings('WL-1').length >= afterRestart + 3);

    // Back to normal on command.
    expect(await t.command({ id: 'normal-1', type: 'set-mode', mode: 'normal' })).toMatchObject({ outcome: 'ok' });
    expect(again.stats()).toMatchObject({ mode: 'normal', pollMs: { 'WL-1': 60_000 } });
    // Bad arguments are refused with the reason.
    const bad = await t.command({ id: 'fast-2', type: 'set-mode', mode: 'turbo' });
    expect(bad).toMatchObject({ outcome: 'rejected', message: expect.stringContaining('mode') });
    const past = await t.command({ id: 'fast-3', type: 'set-mode', mode: 'fast', until: '2020-01-01T00:00:00Z' });
    expect(past).toMatchObject({ outcome: 'rejected', message: expect.stringContaining('past') });
  });

  it('writes a point with the profile codec on write-point, reports the device at once and refuses read-only points', async () => {
    const t = await setup();
    await t.startEdge();
    await until(() => t.readings('WL-1').length >= 1);
    const ack = await t.command({ id: 'w-1', type: 'write-point', device: 'WL-1', point: 'level_m', value: 0.456 });
    expect(ack).toMatchObject({ outcome: 'ok' });
    expect(t.sim.value('WL-1', 'level_m')).toBe(0.456);
    // The fresh reading goes out before the acknowledgement.
    expect(t.readings('WL-1').some((r) => r.values.level_m === 0.456)).toBe(true);

    expect(await t.command({ id: 'w-2', type: 'write-point', device: 'MH-1', point: 'cover_open', value: true })).toMatchObject({ outcome: 'ok' });
    expect(t.sim.value('MH-1', 'cover_open')).toBe(true);
    expect(await t.command({ id: 'w-3', type: 'write-point', device: 'MH-1', point: 'gas_ch4_ppm', value: 1 }))
      .toMatchObject({ outcome: 'rejected', message: expect.stringContaining('not writable') });
    expect(await t.command({ id: 'w-4', type: 'write-point', device: 'XX-9', point: 'level_m', value: 1 }))
      .toMatchObject({ outcome: 'rejected', message: expect.stringContaining('no device') });
    expect(await t.command({ id: 'w-5', type: 'write-point', device: 'WL-1', point: 'nope', value: 1 }))
      .toMatchObject({ outcome: 'rejected' });
  });

  it('publishes health with per-slave counters and the outbox depth', async () => {
    const t = await setup({ healthMs: 100, devices: [
      { id: 'WL-1', profile: 'water-level', bus: 'bus-a', unitId: 1 },
      // Nobody answers unit 9 on this endpoint: the simulator replies exception 0x0B.
      { id: 'WL-9', profile: 'water-level', bus: 'bus-a', unitId: 9 },
    ] });
    const edge = await t.startEdge();
    await edge.pollNow();
    await until(() => t.health.some((h) => h.buses['bus-a']?.slaves.some((s) => s.device === 'WL-9' && s.exception >= 1)));
    const h = t.health.at(-1)!;
    expect(check(EdgeHealthSchema, h).ok).toBe(true);
    expect(h).toMatchObject({ gateway: GW, mode: 'normal', outbox: { dropped: 0 } });
    const slaves = Object.fromEntries(h.buses['bus-a'].slaves.map((s) => [s.device, s]));
    expect(slaves['WL-1'].ok).toBeGreaterThanOrEqual(1);
    expect(slaves['WL-9']).toMatchObject({ ok: 0, timeout: 0 });
    expect(h.buses['bus-a'].link).toMatchObject({ opens: 1, open: true });
  });

  it('reports by exception and raises a cover tilt held past the debounce at once on the alarm topic, then clears it', async () => {
    const t = await setup({
      pollMs: 100,
      reporting: { mode: 'exception', heartbeatMs: 60_000, deadband: 0 },
      alarms: { enabled: true, debounceMs: 300 },
      devices: [{ id: 'MH-1', profile: 'manhole-cover', bus: 'bus-a', unitId: 2, deadbands: { tilt_deg: 1 } }],
    });
    for (const [k, v] of Object.entries({ tilt_deg: 0.5, gas_ch4_ppm: 10, gas_h2s_ppm: 0.2, water_depth_m: 0.05 })) t.sim.set('MH-1', k, v);
    const edge = await t.startEdge();
    const alarms = () => t.b.messages.filter((m) => m.topic === topics.alarm(GW, 'MH-1')).map((m) => JSON.parse(m.payload));
    await until(() => t.readings('MH-1').length >= 1);
    // Nothing moves: polls go on, reports do not.
    await until(() => edge.stats().suppressed >= 5);
    expect(t.readings('MH-1')).toHaveLength(1);
    // Within the deadband: still nothing.
    t.sim.set('MH-1', 'tilt_deg', 1.2);
    const suppressed = edge.stats().suppressed;
    await until(() => edge.stats().suppressed >= suppressed + 3);
    expect(t.readings('MH-1')).toHaveLength(1);

    // The cover is knocked and held displaced past the debounce: one alarm, with the reading that raised it.
    t.sim.set('MH-1', 'tilt_deg', 35);
    await until(() => alarms().length >= 1);
    expect(alarms()[0]).toMatchObject({ device: 'MH-1', rule: 'cover-tilted', hazard: 'cover-open', active: true, value: 35, historical: false });
    expect(t.readings('MH-1').some((r) => r.values.tilt_deg === 35)).toBe(true);
    // Back in place: the alarm clears.
    t.sim.set('MH-1', 'tilt_deg', 0.5);
    await until(() => alarms().some((a) => a.active === false));
    expect(alarms().filter((a) => a.active)).toHaveLength(1);
  });
});
