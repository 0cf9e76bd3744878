/**
 * Modbus TCP half of the edge bench: points per second per core of edge CPU (flat out, the edge's
 * pollers in a process of their own polling the TCP simulator, devices/simulator.ts, in this one);
 * the whole edge's resident memory and CPU per polled device at 1 s polling; and Debian's mbpoll
 * reading the same simulator for the raw CPU cost per request.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Aedes } from 'aedes';
import { loadProfiles, type Profile } from '../devices/profile.ts';
import { buildSimulator, type Simulator } from '../devices/simulator.ts';
import type { EdgeBus, EdgeConfigInput } from '../edge/config.ts';
import { planReads } from '../edge/plan.ts';
import { rssKiB } from './brokers.ts';
import { Worker } from './ipc.ts';
import type { FlatResult, SampleResult, WorkerDevice } from './edge-worker.ts';

/** Devices per simulated endpoint (unit ids 1..N behind one serial-to-TCP gateway). */
const PER_ENDPOINT = 200;

/**
 * A device shaped like Neuron's published test (docs.emqx.com, EMQX Neuron, performance, Modbus TCP):
 * a group of 1,000 float32 points at contiguous addresses. Bench-only, built here, never on disk.
 */
export function floatBlockProfile(points = 1000): Profile {
  return {
    id: 'bench-float-block', kind: 'pipeline', name: 'Bench: 1,000 contiguous float32 points', addressBase: 0, order: 'ABCD', pollMs: 1000,
    points: Array.from({ length: points }, (_, i) => ({
      key: `f${i}`, name: `float ${i}`, table: 'holding' as const, address: 2 * i, type: 'float32' as const,
      scale: 1, offset: 0, unit: '', writable: false,
    })),
    thresholds: [],
  };
}

/** The city's own devices: the built-in profiles in turn. */
export function cityProfiles(): Profile[] {
  const all = loadProfiles();
  return ['water-level', 'manhole-cover', 'pipeline'].map((id) => all.get(id)!);
}

interface Fleet { sims: Simulator[]; buses: EdgeBus[]; devices: WorkerDevice[]; stop(): Promise<void> }

/** `n` devices of `profiles` (in turn) over endpoints of at most `perEndpoint` devices, one simulator and one bus each. */
async function fleet(n: number, profiles: Profile[], perEndpoint = PER_ENDPOINT): Promise<Fleet> {
  const sims: Simulator[] = [];
  const buses: EdgeBus[] = [];
  const devices: WorkerDevice[] = [];
  for (let b = 0; b * perEndpoint < n; b++) {
    const here = Array.from({ length: Math.min(perEndpoint, n - b * perEndpoint) }, (_, i) => ({
      id: `D-${b}-${i + 1}`, unitId: i + 1, profile: profiles[(b * perEndpoint + i) % profiles.length]!,
    }));
    const sim = buildSimulator({ devices: here });
    sims.push(sim);
    const { port } = await sim.start();
    const bus: EdgeBus = { id: `bus-${b}`, type: 'tcp', host: '127.0.0.1', port, timeoutMs: 2000 };
    buses.push(bus);
    for (const d of here) devices.push({ ...d, bus: bus.id });
  }
  return { sims, buses, devices, stop: async () => { await Promise.all(sims.map((s) => s.stop())); } };
}

export interface FlatRun extends FlatResult { shape: string; buses: number; devices: number; pointsPerRead: number }

/** The edge's pollers, every bus back to back for `seconds` (after a 1 s warm-up). */
export async function runFlat(shape: string, buses: number, perBus: number, profiles: Profile[], seconds: number): Promise<FlatRun> {
  const f = await fleet(buses * perBus, profiles, perBus);
  const worker = new Worker('edge-worker.ts');
  try {
    worker.send({ type: 'poller', buses: f.buses, devices: f.devices });
    await worker.next('ready');
    worker.send({ type: 'flat', seconds: 1 });
    await worker.next('flat');
    worker.send({ type: 'flat', seconds });
    const r = await worker.next<FlatResult>('flat');
    const reads = profiles.reduce((s, p) => s + planReads(p).length, 0);
    const pts = profiles.reduce((s, p) => s + p.points.length, 0);
    return { ...r, shape, buses, devices: buses * perBus, pointsPerRead: pts / reads };
  } finally {
    await worker.stop();
    await f.stop();
  }
}

/** CPU seconds (user + system) of a process so far, from /proc/PID/stat (clock ticks of 10 ms). */
function cpuSecondsOf(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

export interface MbpollTcp { requests: number; cpuS: number; wallS: number; floats: number; slaves: number; procs: number }

/**
 * mbpoll reading `floats` float32 (one request) from each of `slaves` simulated devices in turn at its
 * shortest poll rate (10 ms), `procs` of them at once, for `seconds`; their CPU time from /proc. Many
 * requests, so that the 10 ms clock tick of /proc is small beside the total.
 */
export async function runMbpollTcp(seconds: number, floats = 62, slaves = 20, procs = 4): Promise<MbpollTcp> {
  const f = await fleet(slaves, [floatBlockProfile()]);
  const counts = new Array<number>(procs).fill(0);
  const children = Array.from({ length: procs }, (_, k) => {
    const child = spawn('mbpoll', ['-m', 'tcp', '-p', String(f.buses[0]!.port), '-a', `1:${slaves}`, '-0', '-B', '-t', '4:float', '-r', '0',
      '-c', String(floats), '-l', '10', '-o', '2', '127.0.0.1'], { stdio: ['ignore', 'pipe', 'ignore'] });
    let tail = '';
    child.stdout!.on('data', (b: Buffer) => {
      const lines = (tail + b.toString('latin1')).split('\n');
      tail = lines.pop()!;
      for (const line of lines) if (line.startsWith('-- Polling slave')) counts[k]! += 1; // one such line per request
    });
    return { child, exited: new Promise((r) => child.once('exit', r)) };
  });
  const total = (): number => counts.reduce((a, b) => a + b, 0);
  const cpu = (): number => children.reduce((sum, c) => sum + cpuSecondsOf(c.child.pid!), 0);
  try {
    await new Promise((r) => setTimeout(r, 1000));
    const r0 = total();
    const c0 = cpu();
    const t0 = performance.now();
    await new Promise((r) => setTimeout(r, seconds * 1000));
    const cpuS = cpu() - c0;
    return { requests: total() - r0, cpuS, wallS: (performance.now() - t0) / 1000, floats, slaves, procs };
  } finally {
    for (const c of children) c.child.kill('SIGTERM');
    await Promise.all(children.map((c) => c.exited));
    await f.stop();
  }
}

/** `hostCpuMs`: this process's CPU over the same window (the simulators and the broker, which serve the edge). */
export interface FootprintRun extends SampleResult { devices: number; buses: number; points: number; procRssKiB: number; hostCpuMs: number; outbox?: EdgeConfigInput['outbox'] }

/** The whole edge (edge/edge.ts, SQLite outbox, MQTT) polling `n` city devices every second; sampled after a warm-up. */
export async function runFootprint(n: number, warmS: number, sampleS: number, outbox?: EdgeConfigInput['outbox']): Promise<FootprintRun> {
  const profiles = cityProfiles();
  const f = await fleet(n, profiles);
  const broker = await Aedes.createBroker();
  const server = createServer(broker.handle);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  const url = `mqtt://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const dataDir = mkdtempSync(join(tmpdir(), 'cs-edge-bench-'));
  const worker = new Worker('edge-worker.ts');
  try {
    const config: EdgeConfigInput = {
      gateway: 'gw-bench', mqtt: { url, username: 'gw-bench', password: 'bench' }, pollMs: 1000,
      buses: f.buses, devices: f.devices.map((d) => ({ id: d.id, profile: d.profile.id, bus: d.bus, unitId: d.unitId })),
      ...(outbox ? { outbox } : {}),
    };
    worker.send({ type: 'edge', config, profiles, dataDir });
    await worker.next('ready');
    await new Promise((r) => setTimeout(r, warmS * 1000));
    const host0 = process.cpuUsage();
    worker.send({ type: 'sample', seconds: sampleS });
    const s = await worker.next<SampleResult>('sample', (sampleS + 60) * 1000);
    const host = process.cpuUsage(host0);
    const points = f.devices.reduce((sum, d) => sum + d.profile.points.length, 0);
    return { ...s, devices: n, buses: f.buses.length, points, procRssKiB: rssKiB(worker.pid), hostCpuMs: (host.user + host.system) / 1000, ...(outbox ? { outbox } : {}) };
  } finally {
    await worker.stop(10_000);
    await f.stop();
    await new Promise<void>((resolve) => server.close(() => resolve()));
    await new Promise<void>((resolve) => broker.close(() => resolve()));
    rmSync(dataDir, { recursive: true, force: true });
  }
}
