/** Broker memory per idle authenticated connection: RSS before and after N clients connect. */
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { spawn } from 'node:child_process';
import { availableParallelism, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { buildServer } from '../bin/build-server.js';
import type { Broker } from './brokers.ts';
import { rssKiB, sleep } from './brokers.ts';
import type { Job } from './client-worker.ts';
import { GATEWAY_COUNT, account, gatewayName } from './identities.ts';
import { Worker, all } from './ipc.ts';

export interface ConnResult {
  target: number;
  connected: number;
  failed: number;
  /** Fresh broker, idle. */
  rssStartKiB: number;
  /** After every identity connected once and left: auth caches and allocator arenas warm. */
  rssBeforeKiB: number;
  rssAfterKiB: number;
  /** Bytes of broker RSS per connection. */
  perConnection: number;
  /** Of which JS heap (after a full GC), when the broker reports it (ours). */
  heapPerConnection?: number;
  connectSeconds: number;
}

/**
 * Connection i authenticates as gateway gw-(i mod 100) with a client id of its own; the
 * clients are spread over `processes` child processes (one Node process holds ~20k files).
 */
export async function runConnections(broker: Broker, target: number, processes: number): Promise<ConnResult> {
  await broker.settle();
  const rssStartKiB = rssKiB(broker.pid);
  // Warm-up: each identity authenticates once (our store runs scrypt then, and caches), then leaves.
  const warm = new Worker('client-worker.ts');
  try {
    const accounts = Array.from({ length: GATEWAY_COUNT }, (_, i) => account(gatewayName(i)));
    warm.send({ type: 'start', role: 'idle', url: broker.url, accounts, concurrency: 20 } satisfies Job & { type: string });
    await warm.next('ready');
  } finally {
    await warm.stop();
  }
  await sleep(1_000);
  await broker.settle();
  const rssBeforeKiB = rssKiB(broker.pid);
  const heapBefore = broker.heapUsed;
  const workers = Array.from({ length: processes }, () => new Worker('client-worker.ts'));
  try {
    workers.forEach((w, p) => {
      const accounts = [];
      for (let i = p; i < target; i += processes) accounts.push(account(gatewayName(i % GATEWAY_COUNT)));
      w.send({ type: 'start', role: 'idle', url: broker.url, accounts, concurrency: 20 } satisfies Job & { type: string });
    });
    const ready = await all(workers, (w) => w.next<{ type: string; connected: number; failed: number; firstError: string; elapsedMs: number }>('ready', 300_000));
    const connected = ready.reduce((n, r) => n + r.connected, 0);
    const failed = ready.reduce((n, r) => n + r.failed, 0);
    if (failed > 0) console.error(`  ${broker.name}: ${failed} connections failed, e.g. ${ready.find((r) => r.firstError)?.firstError}`);
    await sleep(2_000); // let the broker go idle
    await broker.settle();
    const rssAfterKiB = rssKiB(broker.pid);
    return {
      target, connected, failed, rssStartKiB, rssBeforeKiB, rssAfterKiB,
      perConnection: connected > 0 ? ((rssAfterKiB - rssBeforeKiB) * 1024) / connected : NaN,
      ...(heapBefore !== undefined && broker.heapUsed !== undefined && connected > 0 ? { heapPerConnection: (broker.heapUsed - heapBefore) / connected } : {}),
      connectSeconds: Math.max(...ready.map((r) => r.elapsedMs)) / 1000,
    };
  } finally {
    await all(workers, (w) => w.stop());
  }
}

/** Replaces the idle connections table of RESULTS.md (its `### ... idle authenticated connections` heading to the next heading). */
export function writeConnSection(section: string): void {
  const url = new URL('RESULTS.md', import.meta.url);
  const text = existsSync(url) ? readFileSync(url, 'utf8') : '';
  const m = /^### [\d,]+ idle authenticated connections$/m.exec(text);
  const stamp = `Measured by \`npm run bench -- --only connections\` at ${new Date().toISOString().slice(0, 16)}Z on ${availableParallelism()} shared cores, load average ${loadavg().map((l) => l.toFixed(1)).join(', ')} after the run.\n`;
  const body = section.replace(/\n\n/, `\n\n${stamp}\n`).replace(/\n*$/, '\n\n');
  if (!m) return writeFileSync(url, `${text.trimEnd()}\n\n${body}`);
  const after = text.slice(m.index + m[0].length);
  const next = after.search(/\n#{2,3} /);
  writeFileSync(url, text.slice(0, m.index) + body + (next < 0 ? '' : after.slice(next + 1)));
}

/**
 * RSS in KiB of an idle Node process, bare and with the tsx loader (the floor under ours at start), and of
 * the `citysteward gateway` command itself (a fresh data directory, no HTTP port, no Redis) 5 s after its start.
 */
export async function runtimeRss(): Promise<{ node: number; tsx: number; command: number }> {
  const idle = async (args: string[], ms = 2_500, env: NodeJS.ProcessEnv = {}): Promise<number> => {
    const p = spawn(process.execPath, args, { stdio: 'ignore', cwd: new URL('..', import.meta.url).pathname, env: { ...process.env, CS_LOG_FORMAT: 'json', ...env } });
    await sleep(ms);
    const kib = rssKiB(p.pid!);
    p.kill();
    await new Promise((r) => (p.exitCode !== null ? r(null) : p.once('exit', r)));
    return kib;
  };
  const wait = ['-e', 'setTimeout(() => {}, 5000)'];
  const dir = mkdtempSync(join(tmpdir(), 'cs-bench-command-'));
  // The command as `npm install` leaves it: built from the sources as they are now (a build of its own, so
  // that a stale dist/ is neither measured nor touched), and required (CITYSTEWARD_RUN=build).
  const build = mkdtempSync(fileURLToPath(new URL('../.tmp-bench-build-', import.meta.url)));
  try {
    await buildServer({ outdir: build });
    const command = await idle(['bin/citysteward.js', 'gateway', '--data-dir', dir, '--mqtt-port', '0'], 5_000, { CITYSTEWARD_RUN: 'build', CITYSTEWARD_BUILD_DIR: build });
    return { node: await idle(wait), tsx: await idle(['--import', 'tsx', ...wait]), command };
  } finally {
    rmSync(dir, { recursive: true, force: true });
    rmSync(build, { recursive: true, force: true });
  }
}
