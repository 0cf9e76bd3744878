/**
 * RTU half of the edge bench: the pass time of the edge's poller over 32 simulated RTU slaves on a
 * socat pseudo-terminal pair, against the wire-time limit at the same baud (docs/targets.md: a pass
 * within 10 % of the limit; a dead slave costs the others nothing), with and without one dead slave;
 * and Debian's mbpoll (libmodbus) as a peer master on the same line and slaves.
 * A pty ignores baud, so the simulator (devices/rtu-sim.ts `baudRate`) delays each reply by the
 * frames' wire time and the request's end-of-frame silence; the edge keeps the silence before each
 * request itself (edge/transport.ts).
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadProfiles, type Profile } from '../devices/profile.ts';
import { buildRtuSim } from '../devices/rtu-sim.ts';
import { planReads, type ReadBlock } from '../edge/plan.ts';
import type { EdgeBus } from '../edge/config.ts';
import { Worker } from './ipc.ts';
import type { PassesResult, WorkerDevice } from './edge-worker.ts';

export const RTU_SLAVES = 32;
/** The slaves' reply time (the device's own processing), as in the wire-time example of docs/architecture.md. */
export const REPLY_MS = 10;
/** The unit id made dead in the dead-slave runs: mid-bus, with live neighbours on both sides. */
export const DEAD_UNIT = 17;
/** The edge's defaults (edge/config.ts EdgeBreaker and EdgeBus.timeoutMs). */
export const BREAKER = { failures: 3, backoffMs: 2000, maxBackoffMs: 60_000 };
export const TIMEOUT_MS = 1000;

/** 11 bits a character; 3.5 characters between frames, fixed 1.75 ms above 19,200 baud (Modbus over Serial Line 2.5.1.1). */
export function charMs(baud: number): number {
  return (11 * 1000) / baud;
}
export function gapMs(baud: number): number {
  return baud > 19200 ? 1.75 : 3.5 * charMs(baud);
}

/** Bytes of one read's request and response frames (address, function, data, CRC). */
export function readBytes(block: Pick<ReadBlock, 'table' | 'count'>): { request: number; response: number } {
  const data = block.table === 'coil' || block.table === 'discrete' ? Math.ceil(block.count / 8) : block.count * 2;
  return { request: 8, response: 5 + data };
}

/** The least time one read can take on the line: both frames, a silence after each, and the device's reply time. */
export function readLimitMs(block: Pick<ReadBlock, 'table' | 'count'>, baud: number, replyMs: number): number {
  const { request, response } = readBytes(block);
  return (request + response) * charMs(baud) + 2 * gapMs(baud) + replyMs;
}

/** The wire-time limit of one pass: every planned read of every device, back to back. */
export function passLimitMs(profiles: Profile[], baud: number, replyMs: number): number {
  return profiles.reduce((sum, p) => sum + planReads(p).reduce((s, b) => s + readLimitMs(b, baud, replyMs), 0), 0);
}

export interface RtuRun {
  baud: number;
  limit32Ms: number;
  limit31Ms: number;
  healthy: PassesResult;
  /** Passes with the dead slave, from its first timeout on. */
  dead: PassesResult;
  /** mbpoll passes on the same line (healthy, then with the dead slave); empty without mbpoll. */
  mbpoll: { healthy: number[]; dead: number[] };
  profile: string;
  registers: number;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function until(cond: () => boolean, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error('timed out waiting for the pty pair');
    await sleep(10);
  }
}

export const mbpollPresent = (): boolean => spawnSync('mbpoll', ['-V']).status === 0;

/** One mbpoll pass over every slave (one invocation, `-1`); wall time in ms, process start included. */
function mbpollPass(path: string, baud: number, count: number, slaves: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const child = spawn('mbpoll', ['-m', 'rtu', '-b', String(baud), '-P', 'none', '-d', '8', '-s', '1', '-o', String(TIMEOUT_MS / 1000),
      '-0', '-t', '4', '-r', '0', '-c', String(count), '-a', `1:${slaves}`, '-1', path], { stdio: ['ignore', 'ignore', 'ignore'] });
    child.on('error', reject);
    child.on('exit', () => resolve(performance.now() - t0));
  });
}

/** The whole RTU run at one baud: ours healthy, ours with a dead slave, then mbpoll both ways. */
export async function runRtu(baud: number, passes: { healthy: number; dead: number; mbpoll: number }, log: (s: string) => void): Promise<RtuRun> {
  const profile = loadProfiles().get('pipeline')!;
  const registers = planReads(profile).reduce((s, b) => s + b.count, 0);
  const dir = mkdtempSync(join(tmpdir(), 'cs-edge-bench-'));
  const edgeEnd = join(dir, 'edge-end');
  const slaveEnd = join(dir, 'slave-end');
  let socat: ChildProcess | undefined;
  let worker: Worker | undefined;
  const sim = buildRtuSim({
    path: slaveEnd, baudRate: baud, replyDelayMs: REPLY_MS,
    slaves: Array.from({ length: RTU_SLAVES }, (_, i) => ({ unitId: i + 1, profile, id: `PL-${i + 1}` })),
  });
  try {
    socat = spawn('socat', [`pty,raw,echo=0,link=${edgeEnd}`, `pty,raw,echo=0,link=${slaveEnd}`], { stdio: 'ignore' });
    await until(() => existsSync(edgeEnd) && existsSync(slaveEnd));
    await sim.start();
    const bus: EdgeBus = { id: 'bus-rtu', type: 'rtu', host: '127.0.0.1', path: edgeEnd, baudRate: baud, parity: 'none', stopBits: 1, timeoutMs: TIMEOUT_MS, reopenMs: 100 };
    const devices: WorkerDevice[] = Array.from({ length: RTU_SLAVES }, (_, i) => ({ id: `PL-${i + 1}`, bus: bus.id, unitId: i + 1, profile }));
    worker = new Worker('edge-worker.ts');
    worker.send({ type: 'poller', buses: [bus], devices, breaker: BREAKER });
    await worker.next('ready');
    const passesOf = async (n: number): Promise<PassesResult> => { worker!.send({ type: 'passes', n }); return worker!.next<PassesResult>('passes'); };
    await passesOf(1); // warm-up: the port opened, the JIT warm
    log(`   ${baud} baud: ${passes.healthy} passes, all slaves answering`);
    const healthy = await passesOf(passes.healthy);
    sim.setFault(DEAD_UNIT, 'dead');
    log(`   ${baud} baud: ${passes.dead} passes, unit ${DEAD_UNIT} dead`);
    const dead = await passesOf(passes.dead);
    await worker.stop();
    worker = undefined;
    const mbpoll = { healthy: [] as number[], dead: [] as number[] };
    if (passes.mbpoll > 0 && mbpollPresent()) {
      sim.setFault(DEAD_UNIT, 'none');
      await sleep(100); // the simulator's framer resynchronises on silence
      await mbpollPass(edgeEnd, baud, registers, RTU_SLAVES); // warm-up (page cache, the line)
      for (let i = 0; i < passes.mbpoll; i++) mbpoll.healthy.push(await mbpollPass(edgeEnd, baud, registers, RTU_SLAVES));
      sim.setFault(DEAD_UNIT, 'dead');
      mbpoll.dead.push(await mbpollPass(edgeEnd, baud, registers, RTU_SLAVES));
    }
    const live = Array.from({ length: RTU_SLAVES - 1 }, () => profile);
    return {
      baud, healthy, dead, mbpoll, profile: profile.id, registers,
      limit32Ms: passLimitMs([...live, profile], baud, REPLY_MS), limit31Ms: passLimitMs(live, baud, REPLY_MS),
    };
  } finally {
    await worker?.stop();
    await sim.stop();
    if (socat && socat.exitCode === null) {
      const exited = new Promise((r) => socat!.once('exit', r));
      socat.kill('SIGTERM');
      await exited;
    }
    rmSync(dir, { recursive: true, force: true });
  }
}
