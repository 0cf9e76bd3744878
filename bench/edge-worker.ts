/**
 * Child process that is "the edge" of the edge bench (bench/edge-bench.ts), so that its CPU time and
 * resident memory are its own. Two modes, chosen by the first message:
 * - `poller`: the edge's bus pollers and transports (edge/poller.ts, edge/transport.ts, the profile
 *   codec) with no timers of their own; readings are counted and dropped. Used for RTU passes and for
 *   flat-out Modbus TCP throughput.
 * - `edge`: the whole edge gateway (edge/edge.ts: pollers, SQLite outbox, MQTT to the parent's broker)
 *   polling on its own interval. Used for memory and CPU per polled device.
 * Parent protocol (IPC):
 *   <- { type: 'poller', buses, devices, breaker? }    or { type: 'edge', config, profiles, dataDir }
 *   -> { type: 'ready' }
 *   <- { type: 'passes', n }        -> { type: 'passes', ms: number[], health }      (poller)
 *   <- { type: 'flat', seconds }    -> { type: 'flat', ... }                         (poller)
 *   <- { type: 'sample', seconds }  -> { type: 'sample', cpuMs, wallMs, readings, rssKiB, heapKiB }
 *   <- { type: 'stop' }
 */
import { planReads } from '../edge/plan.ts';
import { createBusPoller, type BusPoller, type DeviceReading } from '../edge/poller.ts';
import { createBusTransport, type BusTransport } from '../edge/transport.ts';
import type { Edge } from '../edge/edge.ts';
import type { EdgeBus, EdgeConfigInput } from '../edge/config.ts';
import type { Profile } from '../devices/profile.ts';
import { silentLogger } from '../lib/log.ts';

export interface WorkerDevice { id: string; bus: string; unitId: number; profile: Profile }
export interface PollerJob { type: 'poller'; buses: EdgeBus[]; devices: WorkerDevice[]; breaker?: { failures: number; backoffMs: number; maxBackoffMs: number } }
export interface EdgeJob { type: 'edge'; config: EdgeConfigInput; profiles: Profile[]; dataDir: string }
export interface FlatResult { type: 'flat'; wallMs: number; cpuMs: number; readings: number; points: number; requests: number; errors: number }
export interface SampleResult { type: 'sample'; wallMs: number; cpuMs: number; readings: number; errors: number; rssKiB: number; heapKiB: number }
/** Per pass: its wall time, readings, and breaker probes in it (each probe of a dead slave costs a timeout). */
export interface PassesResult { type: 'passes'; ms: number[]; readings: number[]; probes: number[]; skipped: number; breakers: string[] }

const send = (m: object): void => { process.send!(m); };
const cpuMs = (): number => { const u = process.cpuUsage(); return (u.user + u.system) / 1000; };

const transports: BusTransport[] = [];
const pollers: BusPoller[] = [];
let edge: Edge | undefined;
let readings = 0;
let points = 0;

function onReading(r: DeviceReading): Promise<void> {
  readings += 1;
  points += Object.keys(r.values).length;
  return Promise.resolve();
}

function startPollers(job: PollerJob): void {
  for (const bus of job.buses) {
    const transport = createBusTransport({ bus, logger: silentLogger() });
    transports.push(transport);
    const devices = job.devices.filter((d) => d.bus === bus.id)
      .map((d) => ({ id: d.id, profile: d.profile, unitId: d.unitId, pollMs: Infinity, blocks: planReads(d.profile) }));
    const poller = createBusPoller({ busId: bus.id, transport, devices, logger: silentLogger(), onReading, ...(job.breaker ? { breaker: job.breaker } : {}) });
    poller.start();
    pollers.push(poller);
  }
}

/** One pass: every bus polled once, buses in parallel (as the edge does). */
async function passes(n: number): Promise<PassesResult> {
  const ms: number[] = [];
  const got: number[] = [];
  const probes: number[] = [];
  const probed = (): number => pollers.reduce((s, p) => s + p.health().reduce((t, h) => t + h.probes, 0), 0);
  for (let i = 0; i < n; i++) {
    const before = readings;
    const probesBefore = probed();
    const t0 = performance.now();
    await Promise.all(pollers.map((p) => p.pollAll()));
    ms.push(performance.now() - t0);
    got.push(readings - before);
    probes.push(probed() - probesBefore);
  }
  const health = pollers.flatMap((p) => p.health());
  return {
    type: 'passes', ms, readings: got, probes,
    skipped: health.reduce((s, h) => s + h.skipped, 0),
    breakers: health.filter((h) => h.breaker !== 'closed').map((h) => `${h.device}:${h.breaker}`),
  };
}

/** Every bus polled back to back for `seconds`: the edge as busy as the slaves let it be. */
async function flat(seconds: number): Promise<FlatResult> {
  const r0 = readings;
  const p0 = points;
  const q0 = transports.reduce((s, t) => s + t.stats().requests, 0);
  const e0 = pollers.reduce((s, p) => s + p.stats().errors, 0);
  const c0 = cpuMs();
  const t0 = performance.now();
  const end = t0 + seconds * 1000;
  await Promise.all(pollers.map(async (p) => { while (performance.now() < end) await p.pollAll(); }));
  return {
    type: 'flat', wallMs: performance.now() - t0, cpuMs: cpuMs() - c0, readings: readings - r0, points: points - p0,
    requests: transports.reduce((s, t) => s + t.stats().requests, 0) - q0,
    errors: pollers.reduce((s, p) => s + p.stats().errors, 0) - e0,
  };
}

/** CPU and memory of the running edge over `seconds`. */
async function sample(seconds: number): Promise<SampleResult> {
  const s0 = edge!.stats();
  const c0 = cpuMs();
  const t0 = performance.now();
  await new Promise((r) => setTimeout(r, seconds * 1000));
  const s1 = edge!.stats();
  const mem = process.memoryUsage();
  return {
    type: 'sample', wallMs: performance.now() - t0, cpuMs: cpuMs() - c0,
    readings: s1.accepted - s0.accepted, errors: s1.pollErrors - s0.pollErrors,
    rssKiB: Math.round(mem.rss / 1024), heapKiB: Math.round(mem.heapUsed / 1024),
  };
}

async function stop(): Promise<void> {
  await Promise.all(pollers.map((p) => p.stop()));
  await Promise.all(transports.map((t) => t.close()));
  await edge?.stop();
  process.exit(0);
}

type Incoming = PollerJob | EdgeJob | { type: 'passes'; n: number } | { type: 'flat' | 'sample'; seconds: number } | { type: 'stop' };

process.on('message', (msg: Incoming) => {
  void (async () => {
    try {
      if (msg.type === 'poller') {
        startPollers(msg);
        send({ type: 'ready' });
      } else if (msg.type === 'edge') {
        const job = msg;
        const { buildEdge } = await import('../edge/edge.ts'); // only here: the poller mode starts lighter
        edge = buildEdge({ config: job.config, profiles: new Map(job.profiles.map((p) => [p.id, p])), dataDir: job.dataDir });
        await edge.start();
        send({ type: 'ready' });
      } else if (msg.type === 'passes') send(await passes(msg.n));
      else if (msg.type === 'flat') send(await flat(msg.seconds));
      else if (msg.type === 'sample') send(await sample(msg.seconds));
      else if (msg.type === 'stop') await stop();
    } catch (err) {
      send({ type: 'error', message: (err as Error).stack ?? String(err) });
    }
  })();
});
process.on('disconnect', () => process.exit(0));
