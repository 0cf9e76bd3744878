import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { MqttClient } from 'mqtt';
import { afterEach, describe, expect, it } from 'vitest';
import type { CommandAck, GatewayState, Reading } from '../../lib/messages.ts';
import { topics } from '../../lib/topics.ts';
import { loadProfiles } from '../../devices/profile.ts';
import { buildSimulator, type Simulator } from '../../devices/simulator.ts';
import { CredentialStore } from '../../gateway/credentials.ts';
import { buildGateway } from '../../gateway/gateway.ts';
import { buildEdge, type Edge } from '../../edge/edge.ts';
import type { EdgeConfigInput } from '../../edge/config.ts';
import { devicesDigest, LIVE_CONFIG_FILE } from '../../edge/live-config.ts';
import { connectMqtt } from '../gateway/helpers.ts';
import { until } from './helpers.ts';

/**
 * Live device updates (docs/architecture.md#live-device-updates): the cloud's `set-devices` command,
 * through the real broker (authenticated, ACLs), to an edge polling real Modbus TCP simulators.
 */

const profiles = loadProfiles();
const GW = 'gw-live';
const POLL_MS = 300;
const cleanups: (() => Promise<unknown> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

type Dev = EdgeConfigInput['devices'][number];

async function setup() {
  const store = CredentialStore.memory();
  const gwPassword = store.create(GW, 'gateway').password;
  store.create('cloud', 'service', 'cloud-password-001');
  const broker = buildGateway({ credentials: store });
  const url = `mqtt://127.0.0.1:${(await broker.start()).port}`;
  cleanups.push(() => broker.stop());
  const sims: Simulator[] = [];
  for (const unitIds of [[1, 2, 3], [1]]) {
    const sim = buildSimulator({ port: 0, devices: unitIds.map((u) => ({ id: `u${u}`, profile: profiles.get(u === 2 ? 'manhole-cover' : 'water-level')!, unitId: u })) });
    await sim.start();
    cleanups.push(() => sim.stop());
    sims.push(sim);
  }
  // The second simulator's gauge reads far higher: a reading of it shows which bus a device was polled on.
  sims[1].set('u1', 'level_m', 5);
  const cloud: MqttClient = await connectMqtt(url, { username: 'cloud', password: 'cloud-password-001', clientId: 'cloud-test', reconnectPeriod: 100 });
  cleanups.push(() => cloud.endAsync(true));
  const readings: (Reading & { at: number })[] = [];
  const acks: CommandAck[] = [];
  const births: GatewayState[] = [];
  cloud.on('message', (topic, payload) => {
    const json = JSON.parse(payload.toString());
    if (topic === topics.cmdAck(GW)) acks.push(json);
    else if (topic === topics.state(GW)) { if (json.online) births.push(json); } else readings.push({ ...json, at: Date.now() });
  });
  await cloud.subscribeAsync([topics.cmdAck(GW), topics.state(GW), `cs/v1/${GW}/up/+`], { qos: 1 });
  const busA = { id: 'bus-a', host: '127.0.0.1', port: sims[0].port, timeoutMs: 500 };
  const busB = { id: 'bus-b', host: '127.0.0.1', port: sims[1].port, timeoutMs: 500 };
  const gauge: Dev = { id: 'WL-1', profile: 'water-level', bus: 'bus-a', unitId: 1 };
  const cover: Dev = { id: 'MH-1', profile: 'manhole-cover', bus: 'bus-a', unitId: 2 };
  const cfg: EdgeConfigInput = {
    gateway: GW, mqtt: { url, username: GW, password: gwPassword }, pollMs: POLL_MS, healthMs: 0, revision: 1,
    outbox: { kind: 'memory' }, buses: [busA], devices: [gauge],
  };
  const dataDir = mkdtempSync(join(tmpdir(), 'cs-live-'));
  cleanups.push(() => rmSync(dataDir, { recursive: true, force: true }));
  const startEdge = async () => {
    const edge: Edge = buildEdge({ config: cfg, profiles, dataDir, reconnectMs: 100 });
    cleanups.push(() => edge.stop());
    await edge.start();
    return edge;
  };
  let n = 0;
  const send = async (body: Record<string, unknown>): Promise<string> => {
    const id = `cmd-${++n}`;
    await cloud.publishAsync(topics.cmd(GW), JSON.stringify({ id, type: 'set-devices', ...body }), { qos: 1 });
    return id;
  };
  const ack = async (id: string): Promise<CommandAck & { at: number }> => {
    await until(() => acks.some((a) => a.id === id));
    return { ...acks.find((a) => a.id === id)!, at: Date.now() };
  };
  const command = async (body: Record<string, unknown>) => ack(await send(body));
  const of = (device: string, after = 0) => readings.filter((r) => r.device === device && r.at >= after);
  return { dataDir, startEdge, command, send, ack, of, births, busA, busB, gauge, cover };
}

describe('set-devices: the devices of a running edge changed by the cloud', () => {
  it('polls a device added to the running edge within two poll intervals of the acknowledgement, without a restart', async () => {
    const s = await setup();
    const edge = await s.startEdge();
    await until(() => s.of('WL-1').length > 0);
    const a = await s.command({ revision: 2, buses: [s.busA], devices: [s.gauge, s.cover] });
    expect(a.outcome).toBe('ok');
    expect(a.message).toBe('revision 2: 2 devices on 1 buses; added MH-1');
    await until(() => s.of('MH-1').length > 0);
    expect(s.of('MH-1')[0].at - a.at).toBeLessThan(2 * POLL_MS);
    expect(edge.stats().revision).toBe(2);
    // The gauge went on: the same edge, its readings numbered on from before.
    const seqs = s.of('WL-1').map((r) => r.seq);
    expect(seqs).toEqual([...seqs].sort((x, y) => x - y));
  });

  it('stops polling a removed device and polls a moved one on its new bus (a new bus opened for it)', async () => {
    const s = await setup();
    const edge = await s.startEdge();
    await s.command({ revision: 2, buses: [s.busA], devices: [s.gauge, s.cover] });
    await until(() => s.of('MH-1').length > 0);
    const a = await s.command({ revision: 3, buses: [s.busA, s.busB], devices: [{ ...s.gauge, bus: 'bus-b' }] });
    expect(a.outcome).toBe('ok');
    expect(a.message).toBe('revision 3: 1 devices on 2 buses; removed MH-1; changed WL-1');
    await until(() => s.of('WL-1', a.at).some((r) => Number(r.values.level_m) > 4));
    await new Promise((r) => setTimeout(r, 3 * POLL_MS));
    // A reading of MH-1 after the acknowledgement was at most one already on the bus when it came.
    expect(s.of('MH-1', a.at + POLL_MS)).toEqual([]);
    const late = s.of('WL-1', a.at + POLL_MS);
    expect(late.length).toBeGreaterThan(0);
    expect(late.every((r) => Number(r.values.level_m) > 4)).toBe(true);
    expect(Object.keys(edge.stats().buses).sort()).toEqual(['bus-a', 'bus-b']);
  });

  it('refuses a bad set-devices whole, naming each problem, and goes on polling the running devices', async () => {
    const s = await setup();
    const edge = await s.startEdge();
    const a = await s.command({
      revision: 2, buses: [s.busA],
      devices: [s.gauge, { ...s.cover, profile: 'no-such-profile' }, { id: 'WL-2', profile: 'water-level', bus: 'bus-a', unitId: 1 }, { ...s.cover, id: 'MH-9', bus: 'bus-z', unitId: 9 }],
    });
    expect(a.outcome).toBe('rejected');
    expect(a.message).toMatch(/^devices refused, revision 1 keeps running: /);
    expect(a.message).toContain('devices[1].profile');
    expect(a.message).toContain('devices[2].unitId: unit id 1 on bus bus-a is already device "WL-1"');
    expect(a.message).toContain('devices[3].bus: unknown bus "bus-z"');
    const schema = await s.command({ revision: 3, buses: [s.busA], devices: [{ id: 'bad id!', profile: 'water-level', bus: 'bus-a', unitId: 300 }] });
    expect(schema.outcome).toBe('rejected');
    expect(schema.message).toMatch(/^invalid arguments: /);
    expect(schema.message).toContain('devices[0].unitId: expected integer to be less or equal to 255');
    expect(schema.message).toContain('devices[0].id: expected string to match');
    expect(edge.stats().revision).toBe(1);
    const after = Date.now();
    await until(() => s.of('WL-1', after).length > 0);
    expect(s.of('MH-1')).toEqual([]);
  });

  it('acknowledges a revision already applied without change and refuses an older one', async () => {
    const s = await setup();
    const edge = await s.startEdge();
    expect((await s.command({ revision: 3, buses: [s.busA], devices: [s.gauge, s.cover] })).outcome).toBe('ok');
    const again = await s.command({ revision: 3, buses: [s.busA], devices: [s.gauge] });
    expect(again).toMatchObject({ outcome: 'ok', message: 'revision 3 already applied' });
    const stale = await s.command({ revision: 2, buses: [s.busA], devices: [s.gauge] });
    expect(stale).toMatchObject({ outcome: 'rejected', message: 'revision 2 is older than the running revision 3: not applied' });
    expect(Object.keys(edge.stats().pollMs).sort()).toEqual(['MH-1', 'WL-1']);
  });

  it('keeps the devices it was sent across a restart (devices.json), and says so in its birth', async () => {
    const s = await setup();
    const first = await s.startEdge();
    await s.command({ revision: 2, buses: [s.busA], devices: [s.gauge, s.cover] });
    await first.stop();
    const again = await s.startEdge();
    expect(again.stats().revision).toBe(2);
    const restarted = Date.now();
    await until(() => s.of('MH-1', restarted).length > 0);
    await until(() => s.births.length >= 2);
    const digest = devicesDigest({
      buses: [{ ...s.busA, type: 'tcp' }],
      devices: [s.gauge, s.cover],
    });
    expect(s.births.at(-1)!.config).toEqual({ revision: 2, digest });
    expect(s.births[0].config).toMatchObject({ revision: 1 });
    expect(LIVE_CONFIG_FILE).toBe('devices.json');
  });

  it('receives a set-devices sent while it was offline when it reconnects (its persistent session held it)', async () => {
    const s = await setup();
    const first = await s.startEdge();
    await until(() => s.of('WL-1').length > 0);
    await first.stop();
    const id = await s.send({ revision: 2, buses: [s.busA], devices: [s.gauge, s.cover] });
    const again = await s.startEdge();
    expect((await s.ack(id)).outcome).toBe('ok');
    expect(again.stats().revision).toBe(2);
    await until(() => s.of('MH-1').length > 0);
  });
});
