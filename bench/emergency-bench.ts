/**
 * Emergency switch (docs/domain.md#emergency-mode, docs/targets.md#targets): from a CAP warning to every connected gateway's
 * acknowledgement of fast polling, beside a bare command-and-acknowledgement round trip to the
 * same clients through the same broker, so the emergency service's own cost shows.
 *
 * Per size: our gateway (auth + ACLs) in a child process of its own; the simulated gateways
 * (emergency-worker.ts) in child processes of up to 2,000 clients each, every client its own
 * gateway identity; the cloud side (emergency-cloud.ts) in this process. Unreported warm-up
 * rounds, then `reps` rounds alternating bare and ours (back to normal mode, not measured, after
 * each of ours).
 */
import { randomBytes, scryptSync } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createCommandFanout } from '../cloud/emergency/fanout.ts';
import { CredentialStore } from '../gateway/credentials.ts';
import { silentLogger } from '../lib/log.ts';
import { rssKiB, sleep } from './brokers.ts';
import { startCloud, type BareRound, type EmergencyRound } from './emergency-cloud.ts';
import type { EmergencyWorkerJob } from './emergency-worker.ts';
import { SERVICE, account, gatewayName } from './identities.ts';
import { Worker, all } from './ipc.ts';
import { DEFAULT_FAST_POLL_MS } from '../lib/vocabulary.ts';

/** Clients per simulated-gateway process (one Node process holds ~20k files here, docs/architecture.md#platform-notes). */
export const CLIENTS_PER_PROCESS = 2_000;

/**
 * scrypt cost of the bench identities only: N = 64 (r 8, p 1; ~0.16 ms) instead of the store's
 * 16,384 (~35-45 ms), so that 10,000 distinct identities can be made and authenticated once in
 * seconds rather than minutes. Authentication happens before the measurement and never in it.
 */
export const BENCH_SCRYPT = { N: 64, r: 8, p: 1, keylen: 32 } as const;

export interface EmergencySize {
  gateways: number;
  reps: number;
}

export function emergencySizes(quick: boolean): EmergencySize[] {
  return quick ? [{ gateways: 200, reps: 2 }] : [{ gateways: 1_000, reps: 5 }, { gateways: 10_000, reps: 3 }];
}

export interface EmergencyResult {
  gateways: number;
  processes: number;
  reps: number;
  /** Time for every simulated gateway to connect and subscribe (s). */
  connectSeconds: number;
  /** Then for every one to publish its retained birth (s). */
  birthSeconds: number;
  brokerRssMiB: number;
  /** The fan-out's bookkeeping alone: begin + one onAck per gateway, no-op publish, no MQTT (ms). */
  fanoutAloneMs: number;
  bare: BareRound[];
  ours: EmergencyRound[];
}

let credentials: { file: string; count: number } | undefined;
/** Our side's warm-up round runs for the first size only (it warms this process: JIT, SQLite). */
let emergencyWarmed = false;

/**
 * A credentials file (gateway/credentials.ts format, version 1) with gateways gw-0 .. gw-(count-1)
 * and the service identity, written in one go: the store's create() hashes at full cost and
 * rewrites the file once per identity. Opened once with CredentialStore to check it is accepted.
 */
export async function emergencyCredentials(count: number): Promise<string> {
  if (credentials && credentials.count >= count) return credentials.file;
  const dir = mkdtempSync(join(tmpdir(), 'cs-bench-emergency-credentials-'));
  process.once('exit', () => rmSync(dir, { recursive: true, force: true }));
  const file = join(dir, 'credentials.json');
  const createdAt = new Date().toISOString();
  const entry = (username: string, role: 'gateway' | 'service'): object => {
    const salt = randomBytes(16);
    const { N, r, p, keylen } = BENCH_SCRYPT;
    const hash = scryptSync(Buffer.from(account(username).password, 'utf8'), salt, keylen, { N, r, p });
    return {
      username, role, ...(role === 'gateway' ? { gateway: username } : {}), createdAt,
      scrypt: { N, r, p, keylen, salt: salt.toString('base64'), hash: hash.toString('base64') },
    };
  };
  const users = [entry(SERVICE, 'service'), ...Array.from({ length: count }, (_, i) => entry(gatewayName(i), 'gateway'))];
  writeFileSync(file, JSON.stringify({ version: 1, users }) + '\n', { mode: 0o600 });
  const store = CredentialStore.open(file);
  if (!(await store.verify(gatewayName(count - 1), account(gatewayName(count - 1)).password))) {
    throw new Error('the bench credentials file is not accepted by CredentialStore');
  }
  credentials = { file, count };
  return file;
}

const log = (s: string): void => console.log(s);

/** Time of cloud/emergency/fanout.ts on its own: begin with a no-op publish, then every gateway's ack. */
export async function fanoutAlone(names: string[]): Promise<number> {
  const fanout = createCommandFanout({ publish: async () => {}, gateways: () => names, isOnline: () => true, now: Date.now, logger: silentLogger() });
  try {
    const t0 = performance.now();
    await fanout.begin('mode-1', { type: 'set-mode', mode: 'fast', pollMs: DEFAULT_FAST_POLL_MS });
    for (const gw of names) fanout.onAck(gw, { id: 'mode-1', outcome: 'ok' });
    await fanout.settled();
    return performance.now() - t0;
  } finally {
    fanout.stop();
  }
}

export async function runEmergency(size: EmergencySize, credentialsFile: string): Promise<EmergencyResult> {
  const names = Array.from({ length: size.gateways }, (_, i) => gatewayName(i));
  const processes = Math.ceil(size.gateways / CLIENTS_PER_PROCESS);
  const broker = new Worker('gateway-worker.ts', [], [credentialsFile]);
  const workers: Worker[] = [];
  let cloud: Awaited<ReturnType<typeof startCloud>> | undefined;
  try {
    const { port } = await broker.next<{ type: string; port: number }>('ready');
    const url = `mqtt://127.0.0.1:${port}`;
    for (let p = 0; p < processes; p++) workers.push(new Worker('emergency-worker.ts'));
    workers.forEach((w, p) => {
      const gateways = names.filter((_, i) => i % processes === p);
      w.send({ type: 'start', url, gateways, concurrency: 50 } satisfies EmergencyWorkerJob & { type: string });
    });
    const ready = await all(workers, (w) => w.next<{ type: string; connected: number; failed: number; firstError: string; elapsedMs: number }>('ready', 300_000));
    const failed = ready.reduce((n, r) => n + r.failed, 0);
    if (failed > 0) throw new Error(`${failed} simulated gateways failed to connect, e.g. ${ready.find((r) => r.firstError)?.firstError}`);
    const connectSeconds = Math.max(...ready.map((r) => r.elapsedMs)) / 1000;
    workers.forEach((w) => w.send({ type: 'birth' }));
    const born = await all(workers, (w) => w.next<{ type: string; elapsedMs: number }>('born', 120_000));
    const birthSeconds = Math.max(...born.map((r) => r.elapsedMs)) / 1000;
    log(`  ${size.gateways} gateways connected and subscribed from ${processes} processes in ${connectSeconds.toFixed(1)} s, births in ${birthSeconds.toFixed(1)} s`);

    cloud = await startCloud(url, names);
    await sleep(500);
    // Warm-up, not reported: a bare round per size (broker, clients, this process's MQTT client),
    // ours once per process (JIT, first SQLite writes); a 10,000-gateway round of ours costs ~20 s here.
    await cloud.bare('warmup');
    if (!emergencyWarmed) {
      await cloud.emergency(`${size.gateways}-warmup`);
      await cloud.reset();
      emergencyWarmed = true;
    }
    const bare: BareRound[] = [];
    const ours: EmergencyRound[] = [];
    for (let rep = 1; rep <= size.reps; rep++) {
      await sleep(300);
      const b = await cloud.bare(`${size.gateways}-${rep}`);
      bare.push(b);
      await sleep(300);
      const o = await cloud.emergency(`${size.gateways}-${rep}`);
      ours.push(o);
      log(`  round ${rep}: bare ${b.lastAckMs.toFixed(0)} ms; ours switched ${o.switchedMs.toFixed(0)} ms, last ack ${o.lastAckMs.toFixed(0)} ms, settled ${o.settledMs.toFixed(0)} ms (${o.attempts} commands)`);
      await cloud.reset();
    }
    const brokerRssMiB = rssKiB(broker.pid) / 1024;
    await cloud.stop();
    cloud = undefined;
    const fanoutAloneMs = await fanoutAlone(names);
    log(`  fan-out bookkeeping alone: ${fanoutAloneMs.toFixed(0)} ms`);
    return { gateways: size.gateways, processes, reps: size.reps, connectSeconds, birthSeconds, brokerRssMiB, fanoutAloneMs, bare, ours };
  } finally {
    await cloud?.stop();
    await all(workers, (w) => w.stop());
    await broker.stop();
  }
}
