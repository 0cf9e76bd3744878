/**
 * End-to-end ingest (issue 12): G gateways × D manhole covers publish readings (6 values, QoS 1, at most
 * `window` unacknowledged per gateway) from a load process of their own; each path stores (or counts) them.
 * Paths run in pairs, alternating order, each on a fresh database. Figures per path: readings/s (acked
 * from the first send to the last reading stored), CPU seconds (/proc, every process of the path, Redis
 * and PostgreSQL backends included), peak RSS (VmHWM of the path's own processes), bytes written per
 * reading (/proc/PID/io write_bytes of the storing process; PostgreSQL: WAL bytes), loss (acked − stored).
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Worker } from './ipc.ts';
import { cpuSeconds, installNodeRed, peakRssMiB, redisPid, writeCredentials, writeDistrict } from './ingest-setup.ts';
import { startPath, type PathName, REDIS_URL } from './ingest-paths.ts';
import { sleep } from './brokers.ts';
import { nowMs } from './stats.ts';

export interface IngestOptions { gateways: number; devices: number; readings: number; window: number; pairs: number; pg: boolean; paths?: PathName[] }

export interface IngestRun {
  path: PathName;
  acked: number;
  stored: number;
  seconds: number;
  cpu: number;
  /** CPU seconds by process: the path's first, its second (if any), then Redis and PostgreSQL backends. */
  cpuParts: number[];
  rssMiB: number;
  written: number;
}

const STABLE_MS = 5_000;

function redisServerPid(): number | undefined {
  try {
    return redisPid(execFileSync('redis-cli', ['-u', REDIS_URL, 'info', 'server'], { encoding: 'utf8' }));
  } catch {
    return undefined;
  }
}

async function runOnce(path: PathName, o: IngestOptions, base: string, nodeRedDir: string): Promise<IngestRun> {
  const run = await startPath(path, base, nodeRedDir);
  const redis = path.startsWith('ours') ? redisServerPid() : undefined;
  const extra = redis ? [redis] : [];
  const cpu0 = new Map<number, number>();
  try {
    const load = new Worker('ingest-load.ts');
    load.send({ type: 'start', url: run.url, gateways: o.gateways, devices: o.devices, readings: o.readings, window: o.window });
    await load.next('connected', 300_000);
    for (const pid of [...await run.pids(), ...extra]) cpu0.set(pid, cpuSeconds(pid));
    load.send({ type: 'go' });
    const done = await load.next<{ acked: number; firstSend: number; lastAck: number }>('done', 3_600_000);
    await load.stop();
    // Stored until every acknowledged reading is in, or nothing changed for STABLE_MS.
    let stored = await run.count();
    let at = nowMs();
    while (stored < done.acked) {
      await sleep(100);
      const n = await run.count();
      if (n !== stored) { stored = n; at = nowMs(); } else if (nowMs() - at > STABLE_MS) break;
    }
    const end = Math.max(done.lastAck, stored >= done.acked ? at : done.lastAck);
    const pids = [...await run.pids(), ...extra];
    const used = (pid: number): number => cpuSeconds(pid) - (cpu0.get(pid) ?? 0);
    const n = path === 'single' ? 1 : 2;
    const cpuParts = [...pids.slice(0, n).map(used), redis ? used(redis) : 0, pids.slice(n).filter((p) => p !== redis).reduce((s, p) => s + used(p), 0)];
    const cpu = cpuParts.reduce((a, b) => a + b, 0);
    const own = pids.slice(0, path === 'single' ? 1 : 2); // the path's own processes, not Redis or PostgreSQL
    return {
      path, acked: done.acked, stored, seconds: (end - done.firstSend) / 1000, cpu, cpuParts,
      rssMiB: own.reduce((s, pid) => s + peakRssMiB(pid), 0), written: await run.written(),
    };
  } finally {
    await run.stop();
  }
}

export async function ingestBench(o: IngestOptions, log: (s: string) => void): Promise<IngestRun[]> {
  const base = mkdtempSync(join(tmpdir(), 'cs-ingest-'));
  try {
    writeDistrict(base, o.gateways, o.devices);
    writeCredentials(base, o.gateways);
    const all: PathName[] = ['ours', 'single', 'count', 'sqlite', 'nodered', 'aedes-count', 'aedes-sqlite', 'bare-count', ...(o.pg ? ['ours-pg', 'sqlite-pg'] as const : [])];
    const paths = o.paths ? all.filter((p) => o.paths!.includes(p)) : all;
    const nodeRedDir = paths.includes('nodered') ? installNodeRed() : '';
    const runs: IngestRun[] = [];
    for (let pair = 0; pair < o.pairs; pair++) {
      for (const p of pair % 2 === 0 ? paths : [...paths].reverse()) {
        log(`-- ingest pair ${pair + 1}/${o.pairs}: ${p}`);
        const r = await runOnce(p, o, base, nodeRedDir);
        log(`   ${Math.round(r.stored / r.seconds)} readings/s, acked ${r.acked}, stored ${r.stored}, cpu ${r.cpu.toFixed(1)} s (${r.cpuParts.map((c) => c.toFixed(1)).join(' + ')}), rss ${r.rssMiB.toFixed(0)} MiB`);
        runs.push(r);
      }
    }
    return runs;
  } finally {
    rmSync(base, { recursive: true, force: true });
  }
}
