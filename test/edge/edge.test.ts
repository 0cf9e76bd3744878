import { mkdtempSync, rmSync, writeFileSync, cpSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Aedes, type Client } from 'aedes';
import { connect, type MqttClient } from 'mqtt';
import { ServerTCP } from 'modbus-serial';
import { afterEach, describe, expect, it } from 'vitest';
import { ConfigError } from '../../lib/config.ts';
import { check } from '../../lib/schema.ts';
import { CommandAck, GatewayState, Reading } from '../../lib/messages.ts';
import { topics } from '../../lib/topics.ts';
import { loadProfiles } from '../../devices/profile.ts';
import { loadDistrict } from '../../devices/district.ts';
import { buildSimulator, type Simulator } from '../../devices/simulator.ts';
import { buildEdge, type Edge } from '../../edge/edge.ts';
import { edgeConfigFromDistrict, loadEdgeConfig, type EdgeConfigInput } from '../../edge/config.ts';
import { createBusTransport } from '../../edge/transport.ts';
import { EdgeErrors } from '../../edge/errors.ts';
import { silentLogger } from '../../lib/log.ts';

const profiles = loadProfiles();
const GW = 'gw-test';
const NOW = Date.parse('2026-09-14T06:00:01.250Z');

/** Everything a test opened, closed in afterEach in reverse order. */
const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'cs-edge-'));
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

interface TestBroker { url: string; clients: Map<string, Client>; published: string[] }

/** An in-process Aedes on a loopback port (chosen by the system unless given). */
async function startBroker(atPort = 0): Promise<TestBroker> {
  const broker = await Aedes.createBroker();
  const clients = new Map<string, Client>();
  const published: string[] = [];
  broker.on('client', (c) => clients.set(c.id, c));
  broker.on('publish', (packet, client) => { if (client) published.push(packet.topic); });
  const sockets = new Set<Socket>();
  const server: Server = createServer((s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
    broker.handle(s);
  });
  await new Promise<void>((resolve) => server.listen(atPort, '127.0.0.1', resolve));
  cleanups.push(async () => {
    for (const s of sockets) s.destroy();
    await new Promise<void>((resolve) => server.close(() => resolve()));
    await new Promise<void>((resolve) => broker.close(() => resolve()));
  });
  const { port } = server.address() as { port: number };
  return { url: `mqtt://127.0.0.1:${port}`, clients, published };
}

interface Message { topic: string; json: unknown; retain: boolean }

/** A subscriber that records every message and can wait for one that matches. */
async function subscriber(url: string, patterns: string[]) {
  const client: MqttClient = connect(url, { protocolVersion: 4, clientId: `sub-${Math.random().toString(16).slice(2)}`, reconnectPeriod: 0 });
  cleanups.push(() => client.endAsync(true));
  await new Promise<void>((resolve, reject) => { client.once('connect', () => resolve()); client.once('error', reject); });
  const messages: Message[] = [];
  const waiters = new Set<() => void>();
  client.on('message', (topic, payload, packet) => {
    let json: unknown;
    try { json = JSON.parse(payload.toString()); } catch { json = payload.toString(); }
    messages.push({ topic, json, retain: packet.retain });
    for (const w of waiters) w();
  });
  await client.subscribeAsync(patterns, { qos: 1 });
  return {
    client,
    messages,
    /** Resolves with the messages once `done(messages)` holds; the test timeout bounds the wait. */
    until(done: (m: Message[]) => boolean): Promise<Message[]> {
      return new Promise((resolve) => {
        const test = () => {
          if (done(messages)) { waiters.delete(test); resolve(messages); }
        };
        waiters.add(test);
        test();
      });
    },
  };
}

function readings(messages: Message[]): Reading[] {
  return messages.filter((m) => m.topic.includes('/up/')).map((m) => m.json as Reading);
}

async function startSim(devices: { id: string; profile: string; unitId: number }[]): Promise<Simulator> {
  const sim = buildSimulator({ host: '127.0.0.1', port: 0, devices: devices.map((d) => ({ ...d, profile: profiles.get(d.profile)! })), seed: 7 });
  await sim.start();
  cleanups.push(() => sim.stop());
  return sim;
}

/** A loopback port with nothing listening on it. */
async function deadPort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((resolve) => s.listen(0, '127.0.0.1', resolve));
  const { port } = s.address() as { port: number };
  await new Promise<void>((resolve) => s.close(() => resolve()));
  return port;
}

function config(url: string, buses: EdgeConfigInput['buses'], devices: EdgeConfigInput['devices'], pollMs = 60_000): EdgeConfigInput {
  return { gateway: GW, mqtt: { url, username: GW, password: 'secret' }, pollMs, buses, devices };
}

function startEdge(cfg: EdgeConfigInput, dataDir: string, now: () => number = () => NOW): Edge {
  const edge = buildEdge({ config: cfg, profiles, dataDir, now, reconnectMs: 100 });
  cleanups.push(() => edge.stop());
  return edge;
}

describe('edge gateway', () => {
  it('publishes decoded readings of a real Modbus TCP slave with increasing seq and the profile values', async () => {
    const broker = await startBroker();
    const sim = await startSim([
      { id: 'MH-1', profile: 'manhole-cover', unitId: 1 },
      { id: 'WL-1', profile: 'water-level', unitId: 2 },
      { id: 'PL-1', profile: 'pipeline', unitId: 3 },
    ]);
    // Hold every point at a known value so that what the edge read can be compared exactly.
    const expected: Record<string, Record<string, number | boolean | string>> = {
      'MH-1': { tilt_deg: 12.5, cover_open: true, water_depth_m: 0.42, gas_ch4_ppm: 17, gas_h2s_ppm: 0.6, battery_pct: 81 },
      'WL-1': { level_m: 0.873, battery_pct: 64 },
      'PL-1': { pressure_mpa: 0.25, flow_m3h: -12.34, totalizer_m3: 125000.5, tag: 'ZH01' },
    };
    for (const [dev, values] of Object.entries(expected)) for (const [k, v] of Object.entries(values)) sim.set(dev, k, v);
    const sub = await subscriber(broker.url, [topics.up(GW, '+')]);

    const edge = startEdge(config(broker.url, [{ id: 'bus-a', host: '127.0.0.1', port: sim.port, timeoutMs: 500 }], [
      { id: 'MH-1', profile: 'manhole-cover', bus: 'bus-a', unitId: 1 },
      { id: 'WL-1', profile: 'water-level', bus: 'bus-a', unitId: 2 },
      { id: 'PL-1', profile: 'pipeline', bus: 'bus-a', unitId: 3, pollMs: 100 },
    ]), tempDir());
    await edge.start();
    await edge.pollNow();
    await edge.pollNow();
    // PL-1 also polls on its own 100 ms interval: three more of its readings without pollNow.
    const all = readings(await sub.until((m) => readings(m).filter((r) => r.device === 'PL-1').length >= 5));

    for (const r of all) {
      expect(check(Reading, r).ok).toBe(true);
      expect(r).toMatchObject({ ts: '2026-09-14T06:00:01.250Z', quality: 'good', historical: false, values: expected[r.device] });
    }
    expect(new Set(all.map((r) => r.device))).toEqual(new Set(['MH-1', 'WL-1', 'PL-1']));
    const seqs = all.map((r) => r.seq);
    for (let i = 1; i < seqs.length; i++) expect(seqs[i]).toBeGreaterThan(seqs[i - 1]);
    const s = edge.stats();
    expect(s.seq).toBe(Math.max(...seqs));
    expect(s.pollErrors).toBe(0);
    expect(s.buses['bus-a'].ok).toBeGreaterThanOrEqual(all.length);
  });

  it('continues seq after a stop and restart, and after a crash, never reusing a number and replaying what was not acknowledged', async () => {
    const broker = await startBroker();
    const sim = await startSim([{ id: 'WL-1', profile: 'water-level', unitId: 1 }]);
    const sub = await subscriber(broker.url, [topics.up(GW, '+')]);
    const cfg = config(broker.url, [{ id: 'bus-a', host: '127.0.0.1', port: sim.port, timeoutMs: 500 }], [
      { id: 'WL-1', profile: 'water-level', bus: 'bus-a', unitId: 1 },
    ]);
    const dataDir = tempDir();
    // The broker acknowledges a publish before it forwards it: wait for the subscriber's copy of a run's last reading.
    const seqsUpTo = async (last: number) => readings(await sub.until((m) => readings(m).some((r) => r.seq === last))).map((r) => r.seq);

    const first = startEdge(cfg, dataDir);
    await first.start();
    await first.pollNow();
    await first.pollNow();
    // What a power cut right now would leave on disk.
    const crashDir = tempDir();
    cpSync(dataDir, crashDir, { recursive: true });
    await first.stop();
    const run1 = await seqsUpTo(first.stats().seq);
    expect(run1.length).toBeGreaterThanOrEqual(2);

    const second = startEdge(cfg, dataDir);
    await second.start();
    await second.pollNow();
    await second.stop();
    const run2 = (await seqsUpTo(second.stats().seq)).slice(run1.length);
    expect(run2.length).toBeGreaterThanOrEqual(1);
    // A clean restart continues exactly: no reuse and no gap.
    expect(run2[0]).toBe(Math.max(...run1) + 1);

    const third = startEdge(cfg, crashDir);
    await third.start();
    await third.pollNow();
    const all3 = readings(await sub.until((m) => readings(m).some((r) => r.seq === third.stats().seq))).slice(run1.length + run2.length);
    // The crashed run's outbox held readings not yet acknowledged at the crash: they come again, as history.
    const replayed = all3.filter((r) => r.seq <= Math.max(...run1));
    for (const r of replayed) {
      expect(run1).toContain(r.seq);
      expect(r.historical).toBe(true);
    }
    const run3 = all3.filter((r) => r.seq > Math.max(...run1)).map((r) => r.seq);
    expect(run3.length).toBeGreaterThanOrEqual(1);
    // After a crash, numbering resumes above everything the crashed run could have handed out.
    expect(Math.min(...run3)).toBeGreaterThan(Math.max(...run2));
    for (const seqs of [run1, run2, all3.map((r) => r.seq)]) for (let i = 1; i < seqs.length; i++) expect(seqs[i]).toBeGreaterThan(seqs[i - 1]);
  });

  it('keeps publishing the readings of one bus while the other bus is dead, and reopens a bus that comes back', async () => {
    const broker = await startBroker();
    const simA = await startSim([{ id: 'WL-A', profile: 'water-level', unitId: 1 }]);
    const simB = await startSim([{ id: 'WL-B', profile: 'water-level', unitId: 1 }]);
    const nothing = await deadPort();
    const sub = await subscriber(broker.url, [topics.up(GW, '+')]);
    const edge = startEdge(config(broker.url, [
      { id: 'bus-a', host: '127.0.0.1', port: simA.port, timeoutMs: 300 },
      { id: 'bus-b', host: '127.0.0.1', port: simB.port, timeoutMs: 300 },
      { id: 'bus-dead', host: '127.0.0.1', port: nothing, timeoutMs: 300 },
    ], [
      { id: 'WL-A', profile: 'water-level', bus: 'bus-a', unitId: 1 },
      // A unit id nobody answers on a live bus: that device fails, its bus neighbour does not.
      { id: 'WL-A9', profile: 'water-level', bus: 'bus-a', unitId: 9 },
      { id: 'WL-B', profile: 'water-level', bus: 'bus-b', unitId: 1 },
      { id: 'WL-D', profile: 'water-level', bus: 'bus-dead', unitId: 1 },
    ]), tempDir());
    await edge.start();
    await edge.pollNow();
    await simB.stop();
    await edge.pollNow();
    await edge.pollNow();

    const count = (m: Message[], dev: string) => readings(m).filter((r) => r.device === dev).length;
    expect(await edge.drained()).toBe(true);
    const seen = await sub.until((m) => readings(m).some((r) => r.seq === edge.stats().seq));
    expect(count(seen, 'WL-A')).toBeGreaterThanOrEqual(3);
    expect(count(seen, 'WL-B')).toBeGreaterThanOrEqual(1);
    expect(count(seen, 'WL-A9')).toBe(0);
    expect(count(seen, 'WL-D')).toBe(0);
    let s = edge.stats();
    expect(s.buses['bus-a'].ok).toBeGreaterThanOrEqual(3);
    expect(s.buses['bus-a'].errors).toBeGreaterThanOrEqual(3);
    expect(s.buses['bus-b'].errors).toBeGreaterThanOrEqual(2);
    expect(s.buses['bus-dead']).toMatchObject({ ok: 0 });
    expect(s.buses['bus-dead'].errors).toBeGreaterThanOrEqual(3);
    expect(s.pollErrors).toBe(s.buses['bus-a'].errors + s.buses['bus-b'].errors + s.buses['bus-dead'].errors);
    expect(s.published).toBe(s.buses['bus-a'].ok + s.buses['bus-b'].ok);

    // The simulator comes back on the same port: a later pass reopens the bus.
    const okB = s.buses['bus-b'].ok;
    const lastSeq = s.seq;
    await simB.start();
    while (edge.stats().buses['bus-b'].ok === okB) {
      await edge.pollNow();
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    await sub.until((m) => readings(m).some((r) => r.device === 'WL-B' && r.seq > lastSeq));
    s = edge.stats();
    expect(s.buses['bus-dead'].ok).toBe(0);
  });

  it('marks the gateway online with a birth, offline by its Will when the connection is cut, and online again on reconnect', async () => {
    const broker = await startBroker();
    const sim = await startSim([{ id: 'WL-1', profile: 'water-level', unitId: 1 }]);
    const edge = startEdge(config(broker.url, [{ id: 'bus-a', host: '127.0.0.1', port: sim.port, timeoutMs: 500 }], [
      { id: 'WL-1', profile: 'water-level', bus: 'bus-a', unitId: 1 },
    ]), tempDir());
    await edge.start();
    const sub = await subscriber(broker.url, [topics.state(GW)]);
    const states = (m: Message[]) => m.map((x) => x.json as GatewayState);
    const [birth] = states(await sub.until((m) => m.length >= 1));
    expect(check(GatewayState, birth).ok).toBe(true);
    expect(birth.online).toBe(true);

    // Cut the edge's connection from the broker side, as a dropped link would.
    broker.clients.get(GW)!.conn.destroy();
    const seen = states(await sub.until((m) => states(m).some((s) => s.online && s.bdSeq > birth.bdSeq)));
    const will = seen.find((s) => !s.online)!;
    expect(will).toMatchObject({ online: false, bdSeq: birth.bdSeq });
    const rebirth = seen.find((s) => s.online && s.bdSeq > birth.bdSeq)!;
    expect(seen.indexOf(rebirth)).toBeGreaterThan(seen.indexOf(will));

    // A clean stop leaves the retained state offline with the current bdSeq.
    await edge.stop();
    const last = states(await sub.until((m) => m.length > seen.length)).at(-1)!;
    expect(last).toMatchObject({ online: false, bdSeq: rebirth.bdSeq });
    const late = await subscriber(broker.url, [topics.state(GW)]);
    const retained = await late.until((m) => m.length >= 1);
    expect(retained[0]).toMatchObject({ retain: true, json: { online: false, bdSeq: rebirth.bdSeq } });
  });

  it('acknowledges report-now after publishing fresh readings, rejects unknown commands and ignores malformed ones', async () => {
    const broker = await startBroker();
    const sim = await startSim([{ id: 'WL-1', profile: 'water-level', unitId: 1 }]);
    const edge = startEdge(config(broker.url, [{ id: 'bus-a', host: '127.0.0.1', port: sim.port, timeoutMs: 500 }], [
      { id: 'WL-1', profile: 'water-level', bus: 'bus-a', unitId: 1 },
    ]), tempDir());
    await edge.start();
    const sub = await subscriber(broker.url, [topics.cmdAck(GW), topics.up(GW, '+')]);
    const cmd = (payload: string) => sub.client.publishAsync(topics.cmd(GW), payload, { qos: 1 });
    const acks = (m: Message[]) => m.filter((x) => x.topic === topics.cmdAck(GW)).map((x) => x.json as CommandAck);

    await cmd('{not json');
    await cmd(JSON.stringify({ type: 'report-now' })); // no id: nothing to acknowledge
    await cmd(JSON.stringify({ id: 'c-1', type: 'report-now' }));
    await cmd(JSON.stringify({ id: 'c-2', type: 'self-destruct' }));
    await cmd(JSON.stringify({ id: 'c-3', type: 'report-now', expires: '2020-01-01T00:00:00Z' }));
    const got = await sub.until((m) => acks(m).length >= 3);

    const byId = Object.fromEntries(acks(got).map((a) => [a.id, a]));
    expect(Object.keys(byId).sort()).toEqual(['c-1', 'c-2', 'c-3']);
    for (const a of acks(got)) expect(check(CommandAck, a).ok).toBe(true);
    expect(byId['c-1']).toEqual({ id: 'c-1', outcome: 'ok', ts: '2026-09-14T06:00:01.250Z' });
    expect(byId['c-2']).toMatchObject({ outcome: 'rejected', message: expect.stringContaining('unknown command type "self-destruct"') });
    expect(byId['c-3']).toMatchObject({ outcome: 'rejected', message: expect.stringContaining('expired') });
    // The ack of report-now comes after the reading it asked for.
    const ackAt = got.findIndex((m) => m.topic === topics.cmdAck(GW) && (m.json as CommandAck).id === 'c-1');
    expect(got.slice(0, ackAt).some((m) => m.topic === topics.up(GW, 'WL-1'))).toBe(true);
  });

  it('starts while the broker is down and delivers the readings taken meanwhile once it is up', async () => {
    const sim = await startSim([{ id: 'WL-1', profile: 'water-level', unitId: 1 }]);
    const mqttPort = await deadPort();
    const edge = startEdge(config(`mqtt://127.0.0.1:${mqttPort}`, [{ id: 'bus-a', host: '127.0.0.1', port: sim.port, timeoutMs: 500 }], [
      { id: 'WL-1', profile: 'water-level', bus: 'bus-a', unitId: 1 },
    ]), tempDir());
    await edge.start();
    // pollNow resolves when its readings are in the outbox; they are published once a broker is there.
    await edge.pollNow();
    expect(edge.stats().outbox.depth).toBeGreaterThanOrEqual(1);
    const broker = await startBroker(mqttPort);
    expect(await edge.drained()).toBe(true);
    // Aedes acknowledges a publish before it emits it (docs/architecture.md#platform-notes): wait for the emit.
    while (!broker.published.includes(topics.up(GW, 'WL-1'))) await new Promise((r) => setTimeout(r, 10));
    expect(edge.stats().published).toBeGreaterThanOrEqual(1);
    // The birth follows once the command subscription is in place.
    const sub = await subscriber(broker.url, [topics.state(GW)]);
    const [state] = await sub.until((m) => m.length >= 1);
    expect(state.json).toMatchObject({ online: true });
    await edge.stop();
  });

  it('refuses to start when the broker rejects its credentials', async () => {
    const broker = await Aedes.createBroker({ authenticate: (_c, _u, _p, done) => done(null, false) });
    const server = createServer(broker.handle);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    cleanups.push(async () => {
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await new Promise<void>((resolve) => broker.close(() => resolve()));
    });
    const url = `mqtt://127.0.0.1:${(server.address() as { port: number }).port}`;
    const edge = startEdge(config(url, [{ id: 'bus-a', host: '127.0.0.1', port: await deadPort(), timeoutMs: 200 }], [
      { id: 'WL-1', profile: 'water-level', bus: 'bus-a', unitId: 1 },
    ]), tempDir());
    await expect(edge.start()).rejects.toMatchObject({ code: EdgeErrors.MQTT_AUTH });
  });
});

describe('Modbus bus transport', () => {
  it('carries one request at a time even when reads are issued together', async () => {
    let active = 0;
    let maxActive = 0;
    let served = 0;
    const vector = {
      getMultipleHoldingRegisters(addr: number, length: number, _unit: number, cb: (err: Error | null, v: number[]) => void) {
        active += 1;
        maxActive = Math.max(maxActive, active);
        setTimeout(() => { active -= 1; served += 1; cb(null, Array.from({ length }, (_, i) => addr + i)); }, 20);
      },
    };
    // ServerTCP listens on `options.port || 502`: port 0 must be passed as text.
    const server = new ServerTCP(vector, { host: '127.0.0.1', port: '0' as unknown as number });
    await new Promise<void>((resolve) => server.on('initialized', () => resolve()));
    cleanups.push(() => new Promise<void>((resolve) => server.close(() => resolve())));
    const port = (server as unknown as { _server: Server })._server.address() as { port: number };
    const transport = createBusTransport({ bus: { id: 'bus-q', type: 'tcp', host: '127.0.0.1', port: port.port, timeoutMs: 1000 }, logger: silentLogger() });
    cleanups.push(() => transport.close());

    const results = await Promise.all([0, 10, 20, 30, 40].map((a) => transport.read(1, 'holding', a, 2)));
    expect(results).toEqual([[0, 1], [10, 11], [20, 21], [30, 31], [40, 41]]);
    expect(served).toBe(5);
    expect(maxActive).toBe(1);
  });
});

describe('edge config', () => {
  function write(text: string): string {
    const file = join(tempDir(), 'edge.yaml');
    writeFileSync(file, text);
    return file;
  }
  const good = `
gateway: gw-1
mqtt: { url: "mqtt://127.0.0.1:1884", username: gw-1, password: pw }
buses:
  - { id: bus-a, port: 1502 }
devices:
  - { id: D-1, profile: water-level, bus: bus-a, unitId: 1 }
`;

  it('loads a config and applies defaults', () => {
    const cfg = loadEdgeConfig(write(good), profiles);
    expect(cfg.pollMs).toBe(1000);
    expect(cfg.buses[0]).toEqual({ id: 'bus-a', type: 'tcp', host: '127.0.0.1', port: 1502, timeoutMs: 1000 });
    expect(cfg.outbox).toEqual({ kind: 'sqlite', maxEntries: 500_000, dropPolicy: 'drop-oldest', sync: 'full', inflight: 64, maxAgeMs: 90 * 86_400_000 });
    expect(cfg.reporting.mode).toBe('poll');
  });

  it('loads serial and serial-server buses, and names a serial bus without a path or a TCP bus without a port', () => {
    const cfg = loadEdgeConfig(write(good.replace('  - { id: bus-a, port: 1502 }', `  - { id: bus-a, type: rtu, path: /dev/ttyUSB0, baudRate: 19200, parity: even, interRequestDelayMs: 3 }
  - { id: bus-b, type: rtu-over-tcp, host: 10.0.0.9, port: 4001 }`)), profiles);
    expect(cfg.buses[0]).toMatchObject({ type: 'rtu', path: '/dev/ttyUSB0', baudRate: 19200, parity: 'even', timeoutMs: 1000 });
    expect(cfg.buses[1]).toMatchObject({ type: 'rtu-over-tcp', host: '10.0.0.9', port: 4001 });
    const file = write(good.replace('  - { id: bus-a, port: 1502 }', '  - { id: bus-a, type: rtu }\n  - { id: bus-b, type: tcp }'));
    expect(() => loadEdgeConfig(file, profiles)).toThrow(/buses\[0\]\.path: is required for an rtu bus[\s\S]*buses\[1\]\.port: is required for a tcp bus/);
    expect(() => loadEdgeConfig(write(good.replace('  - { id: bus-a, port: 1502 }', '  - { id: bus-a, type: rtu, path: /dev/x, parity: mark }')), profiles)).toThrow(/buses\[0\]\.parity/);
  });

  it('names the file and the key of a bad value', () => {
    const file = write(good.replace('unitId: 1', 'unitId: 0'));
    const err = (() => { try { loadEdgeConfig(file, profiles); } catch (e) { return e as ConfigError; } })()!;
    expect(err).toBeInstanceOf(ConfigError);
    expect(err.message).toContain(file);
    expect(err.problems.map((p) => p.key)).toContain('devices[0].unitId');
  });

  it('names a missing key', () => {
    const file = write(good.replace('url: "mqtt://127.0.0.1:1884", ', ''));
    expect(() => loadEdgeConfig(file, profiles)).toThrow(/mqtt\.url: is required/);
  });

  it('names an unknown profile and an unknown bus by their keys', () => {
    const file = write(good.replace('profile: water-level, bus: bus-a', 'profile: rain-gauge, bus: bus-z'));
    expect(() => loadEdgeConfig(file, profiles)).toThrow(expect.objectContaining({
      code: EdgeErrors.CONFIG_INVALID,
      message: expect.stringMatching(/devices\[0\]\.profile: unknown profile "rain-gauge"[\s\S]*devices\[0\]\.bus: unknown bus "bus-z"/),
    }));
  });

  it('refuses two buses on one endpoint and two devices on one unit id', () => {
    const file = write(`${good}  - { id: D-2, profile: pipeline, bus: bus-a, unitId: 1 }\n`.replace(
      '  - { id: bus-a, port: 1502 }', '  - { id: bus-a, port: 1502 }\n  - { id: bus-b, port: 1502 }'));
    expect(() => loadEdgeConfig(file, profiles)).toThrow(/buses\[1\]\.port: endpoint 127\.0\.0\.1:1502 is already bus "bus-a"[\s\S]*devices\[1\]\.unitId/);
  });

  it('derives a gateway config from the district, with the ports the simulators bound', () => {
    const district = loadDistrict(join(import.meta.dirname, '../../devices/district/xiangzhou.yaml'), profiles);
    const mqtt = { url: 'mqtt://127.0.0.1:1884', username: 'gw-xz-gongbei', password: 'pw' };
    const cfg = edgeConfigFromDistrict(district, 'gw-xz-gongbei', mqtt, new Map([['bus-gongbei-a', 15020], ['bus-gongbei-b', 15021]]), profiles);
    expect(cfg.buses.map((b) => [b.id, b.port])).toEqual([['bus-gongbei-a', 15020], ['bus-gongbei-b', 15021]]);
    expect(cfg.devices.length).toBe(district.devices.filter((d) => d.bus.startsWith('bus-gongbei-')).length);
    expect(cfg.devices.every((d) => d.bus.startsWith('bus-gongbei-'))).toBe(true);
    // Without the ports, the district's port 0 is no address to poll.
    expect(() => edgeConfigFromDistrict(district, 'gw-xz-gongbei', mqtt)).toThrow(/buses\[0\]\.port/);
    expect(() => edgeConfigFromDistrict(district, 'gw-nowhere', mqtt)).toThrow(/gateway: unknown gateway "gw-nowhere"/);
  });
});
