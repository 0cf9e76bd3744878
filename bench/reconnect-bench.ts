/**
 * Reconnect storm (issue 12): N distinct gateway identities connect at once to a fresh broker.
 * Ours is the production command, `citysteward gateway`, on credentials provisioned by
 * `citysteward credential import` (generated secrets: SHA-256, docs/architecture.md#machine-credentials);
 * beside it a private Mosquitto with a password file of the same N made by `mosquitto_passwd -U`.
 * Trials are paired and alternate which broker goes first. Measured: wall time from the first
 * CONNECT sent until the last CONNACK, and the broker's CPU seconds over that window (/proc/PID/stat).
 */
import { spawn, execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { availableParallelism, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { sleep, startMosquitto, type Broker } from './brokers.ts';
import type { Account } from './identities.ts';
import { Worker, all } from './ipc.ts';

const BIN = fileURLToPath(new URL('../bin/citysteward.js', import.meta.url));
const TICK = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' })) || 100;
export const RECONNECT_HEADING = '## Reconnect storm';

export interface Trial { broker: string; connected: number; failed: number; seconds: number; cpuSeconds: number; firstError: string }
export interface ReconnectResult { gateways: number; importSeconds: number; passwdSeconds: number; trials: Trial[]; load: number[] }

/** utime + stime of a process, in seconds. */
function cpuSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / TICK;
}

/** Provisions `n` gateways the production way; returns the accounts with their generated secrets. */
function provision(dataDir: string, n: number): { accounts: Account[]; seconds: number } {
  const file = join(dataDir, 'gateways.csv');
  writeFileSync(file, ['id', ...Array.from({ length: n }, (_, i) => `rc-${i}`)].join('\n') + '\n');
  const started = performance.now();
  const out = execFileSync(process.execPath, [BIN, 'credential', 'import', file, '--data-dir', dataDir], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'], maxBuffer: 64 << 20 });
  const seconds = (performance.now() - started) / 1000;
  const accounts = out.split('\n').slice(1).filter(Boolean).map((l) => {
    const [username, password] = l.split(',');
    return { username, password };
  });
  if (accounts.length !== n) throw new Error(`credential import printed ${accounts.length} secrets, expected ${n}`);
  return { accounts, seconds };
}

/** `citysteward gateway` on `dataDir`, any free port, logging warnings only (as the Mosquitto beside it). */
async function startCitySteward(dataDir: string): Promise<Broker> {
  const proc = spawn(process.execPath, [BIN, 'gateway', '--data-dir', dataDir, '--host', '127.0.0.1', '--mqtt-port', '0'],
    { stdio: ['ignore', 'pipe', 'inherit'], env: { ...process.env, CS_LOG_LEVEL: 'warn' } });
  const port = await new Promise<number>((resolve, reject) => {
    let out = '';
    proc.stdout!.on('data', (d) => {
      out += d;
      const m = /MQTT listening on mqtt:\/\/[\d.]+:(\d+)/.exec(out);
      if (m) resolve(Number(m[1]));
    });
    proc.once('exit', (code) => reject(new Error(`citysteward gateway exited (${code}): ${out}`)));
  });
  return {
    name: 'ours', url: `mqtt://127.0.0.1:${port}`, pid: proc.pid!, settle: () => sleep(500),
    async stop() {
      if (proc.exitCode !== null) return;
      const exited = new Promise((r) => proc.once('exit', r));
      proc.kill('SIGTERM');
      await exited;
    },
  };
}

async function trial(broker: Broker, accounts: Account[], processes: number): Promise<Trial> {
  const port = Number(new URL(broker.url).port);
  const workers = Array.from({ length: processes }, () => new Worker('reconnect-worker.ts'));
  try {
    workers.forEach((w, p) => w.send({ type: 'start', port, accounts: accounts.filter((_, i) => i % processes === p) }));
    await all(workers, (w) => w.next('ready'));
    await broker.settle();
    const cpu0 = cpuSeconds(broker.pid);
    const t0 = Date.now();
    workers.forEach((w) => w.send({ type: 'go' }));
    const done = await all(workers, (w) => w.next<{ connected: number; failed: number; firstError: string; lastAt: number }>('done', 600_000));
    const seconds = (Math.max(...done.map((d) => d.lastAt)) - t0) / 1000;
    const cpu = cpuSeconds(broker.pid) - cpu0;
    const failed = done.reduce((n, d) => n + d.failed, 0);
    return { broker: broker.name, connected: done.reduce((n, d) => n + d.connected, 0), failed, seconds, cpuSeconds: cpu,
      firstError: done.find((d) => d.firstError)?.firstError ?? '' };
  } finally {
    await all(workers, (w) => w.stop());
  }
}

export async function reconnectBench(quick: boolean, log: (s: string) => void): Promise<ReconnectResult> {
  const gateways = quick ? 1_000 : 10_000;
  const rounds = quick ? 1 : 3;
  const dataDir = mkdtempSync(join(tmpdir(), 'cs-bench-reconnect-'));
  try {
    const { accounts, seconds: importSeconds } = provision(dataDir, gateways);
    log(`  credential import of ${gateways} gateways: ${importSeconds.toFixed(2)} s (process start included)`);
    const t = performance.now();
    const probe = mkdtempSync(join(tmpdir(), 'cs-bench-passwd-'));
    writeFileSync(join(probe, 'passwd'), accounts.map((a) => `${a.username}:${a.password}\n`).join(''));
    execFileSync('mosquitto_passwd', ['-U', join(probe, 'passwd')]);
    const passwdSeconds = (performance.now() - t) / 1000;
    rmSync(probe, { recursive: true, force: true });
    const trials: Trial[] = [];
    const load = loadavg();
    const run = async (which: 'ours' | 'mosquitto'): Promise<void> => {
      const broker = which === 'ours' ? await startCitySteward(dataDir) : await startMosquitto(accounts);
      try {
        const r = await trial(broker, accounts, 2);
        log(`  ${which}: ${r.connected}/${gateways} connected in ${r.seconds.toFixed(2)} s, broker CPU ${r.cpuSeconds.toFixed(2)} s${r.failed ? `, ${r.failed} failed (${r.firstError})` : ''}`);
        trials.push(r);
      } finally {
        await broker.stop();
      }
    };
    for (let i = 0; i < rounds; i++) {
      if (i % 2 === 0) { await run('ours'); await run('mosquitto'); } else { await run('mosquitto'); await run('ours'); }
    }
    return { gateways, importSeconds, passwdSeconds, trials, load };
  } finally {
    rmSync(dataDir, { recursive: true, force: true });
  }
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

export function reconnectSection(r: ReconnectResult): string {
  const of = (b: string): Trial[] => r.trials.filter((t) => t.broker === b);
  const ours = of('ours');
  const mosq = of('mosquitto');
  const ratios = ours.map((o, i) => o.seconds / mosq[i].seconds);
  const f = (x: number, d = 2): string => x.toFixed(d);
  return [
    RECONNECT_HEADING, '',
    `${r.gateways.toLocaleString('en-US')} distinct gateway identities open a TCP connection and send CONNECT at once (raw MQTT 3.1.1`,
    'clients, bench/reconnect-worker.ts, 2 processes, each with up to 1,000 attempts in flight, so that the kernel\'s SYN queue',
    'and its retransmission delays are not what is measured) to a fresh broker: ours is `citysteward gateway` (log level warn, default limits) on',
    `credentials made by \`citysteward credential import\` (${f(r.importSeconds)} s for ${r.gateways.toLocaleString('en-US')} with process start; generated`,
    `secrets, stored as SHA-256); Mosquitto has a password file of the same secrets hashed by \`mosquitto_passwd -U\` (${f(r.passwdSeconds)} s).`,
    'Time: first CONNECT sent to last CONNACK received. CPU: the broker process\'s user + system seconds over that time.',
    `${ours.length} paired trials, alternating which broker goes first; each broker fresh per trial. Generated by`,
    `\`npm run bench -- --only reconnect\` on ${new Date().toISOString().slice(0, 16)}Z, ${availableParallelism()} cores shared with other work: load average`,
    `${r.load.map((l) => l.toFixed(1)).join(', ')} (1, 5, 15 min) at the start. With the cores oversubscribed, wall time follows CPU time.`, '',
    '| trial | ours: time (s) | ours: CPU (s) | Mosquitto: time (s) | Mosquitto: CPU (s) | time ours ÷ Mosquitto | connected (ours / Mosquitto) |',
    '|---|---:|---:|---:|---:|---:|---|',
    ...ours.map((o, i) => `| ${i + 1} | ${f(o.seconds)} | ${f(o.cpuSeconds)} | ${f(mosq[i].seconds)} | ${f(mosq[i].cpuSeconds)} | ${f(ratios[i])} | ${o.connected} / ${mosq[i].connected} |`),
    `| median | ${f(median(ours.map((o) => o.seconds)))} | ${f(median(ours.map((o) => o.cpuSeconds)))} | ${f(median(mosq.map((m) => m.seconds)))} | ${f(median(mosq.map((m) => m.cpuSeconds)))} | ${f(median(ratios))} | |`,
    '',
    `Target (issue 12): at most 1.5× Mosquitto's time. Before the SHA-256 machine credentials, 1,000 gateways took 21 s and`,
    '41 CPU-seconds on ours (scrypt N = 16,384 per first login) against 1.4 s on Mosquitto.', '',
  ].join('\n');
}

/** Replaces the reconnect section of RESULTS.md (its heading to the next `## `), or appends it. */
export function writeReconnectSection(section: string): void {
  const url = new URL('RESULTS.md', import.meta.url);
  const text = existsSync(url) ? readFileSync(url, 'utf8') : '';
  const start = text.indexOf(RECONNECT_HEADING);
  const next = start < 0 ? -1 : text.indexOf('\n## ', start + RECONNECT_HEADING.length);
  writeFileSync(url, start < 0 ? `${text.trimEnd()}\n\n${section}` : text.slice(0, start) + section + (next < 0 ? '' : `\n${text.slice(next + 1)}`));
}
