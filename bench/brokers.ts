/**
 * The two brokers under test, each in a process of its own whose pid we know:
 * our gateway (gateway-worker.ts, built as production's code is) and a private Mosquitto with the same identities,
 * password authentication and equivalent topic ACLs.
 */
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { connect, createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { buildServer } from '../bin/build-server.js';
import { CredentialStore } from '../gateway/credentials.ts';
import { GATEWAY_COUNT, SERVICE, account, gatewayName, type Account } from './identities.ts';
import { Worker } from './ipc.ts';

export interface Broker {
  name: string;
  url: string;
  pid: number;
  /** Lets the broker reach a steady state before a memory reading (a full GC for ours). */
  settle(): Promise<void>;
  /** JS heap in use after the last settle(), in bytes (ours only). */
  heapUsed?: number;
  /** Writes a heap snapshot to `path` after a full GC and returns it (ours only; bench/heap-conn.ts). */
  snapshot?(path: string): Promise<string>;
  stop(): Promise<void>;
}

/** Resident set size of a process in KiB, from /proc/PID/status. */
export function rssKiB(pid: number): number {
  const m = /^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  if (!m) throw new Error(`no VmRSS for pid ${pid}`);
  return Number(m[1]);
}

/** Every bench identity: the service and the gateways (identities.ts). */
const benchAccounts = (): Account[] => [SERVICE, ...Array.from({ length: GATEWAY_COUNT }, (_, i) => gatewayName(i))].map(account);

let credentialsFile: string | undefined;

/** Our credentials file with every bench identity, made once per run (scrypt: ~35 ms per identity). */
function ourCredentials(): string {
  if (credentialsFile) return credentialsFile;
  const dir = mkdtempSync(join(tmpdir(), 'cs-bench-credentials-'));
  process.once('exit', () => rmSync(dir, { recursive: true, force: true }));
  const file = join(dir, 'credentials.json');
  const store = CredentialStore.open(file);
  for (let i = 0; i < GATEWAY_COUNT; i++) store.create(gatewayName(i), 'gateway', account(gatewayName(i)).password);
  store.create(SERVICE, 'service', account(SERVICE).password);
  return (credentialsFile = file);
}

let builtWorker: Promise<string> | undefined;

/**
 * The broker worker bundled the way production code is (bin/build-server.js: no tsx loader in the
 * process), once per run into a temporary folder; its path.
 */
function gatewayWorker(): Promise<string> {
  return (builtWorker ??= (async () => {
    // Inside the repository, so that the packages resolve from its node_modules as production's do.
    const outdir = mkdtempSync(fileURLToPath(new URL('../.tmp-bench-build-', import.meta.url)));
    process.once('exit', () => rmSync(outdir, { recursive: true, force: true }));
    const manifest = await buildServer({ outdir, entryPoints: { 'gateway-worker': 'bench/gateway-worker.ts' }, entry: 'gateway-worker.js' });
    return join(outdir, manifest.entry);
  })());
}

/** A broker in a bench worker process (gateway-broker.ts' IPC protocol: ready, settle, snapshot, stop). */
async function workerBroker(name: string, worker: Worker, snapshots: boolean): Promise<Broker> {
  const { port } = await worker.next<{ type: string; port: number }>('ready');
  const broker: Broker = {
    name,
    url: `mqtt://127.0.0.1:${port}`,
    pid: worker.pid,
    async settle() {
      worker.send({ type: 'settle' });
      this.heapUsed = (await worker.next<{ heapUsed: number }>('settled')).heapUsed;
      await sleep(500);
    },
    ...(snapshots ? {
      async snapshot(path: string) {
        worker.send({ type: 'snapshot', path });
        return (await worker.next<{ path: string }>('snapshotted', 300_000)).path;
      },
    } : {}),
    stop: () => worker.stop(),
  };
  return broker;
}

export async function startOurs(): Promise<Broker> {
  return workerBroker('ours', new Worker(await gatewayWorker(), ['--expose-gc'], [ourCredentials()]), true);
}

/** Aedes alone, plain JavaScript, nothing of ours but a password check (bench/bare-aedes-worker.js): the floor under ours. */
export function startBareAedes(): Promise<Broker> {
  const passwords = JSON.stringify(benchAccounts().map((u) => [u.username, u.password]));
  return workerBroker('bare Aedes', new Worker(fileURLToPath(new URL('bare-aedes-worker.js', import.meta.url)), ['--expose-gc'], [passwords]), false);
}

/** Mosquitto settings that differ from its defaults, for a like-for-like comparison. */
export const MOSQUITTO_TUNING = [
  'max_queued_messages 1000000', // default 1000 silently drops QoS 1 messages past it
  'max_inflight_messages 0', // no cap on outgoing QoS 1 in flight (Aedes has none)
  'set_tcp_nodelay true', // our gateway sets TCP_NODELAY too
  'persistence false',
];

/** A private Mosquitto; `accounts` default to the bench identities (identities.ts). */
export async function startMosquitto(accounts?: Account[]): Promise<Broker> {
  const dir = mkdtempSync(join(tmpdir(), 'cs-bench-mosquitto-'));
  chmodSync(dir, 0o755); // started as root, mosquitto drops to its own user and must read these files
  const port = await freePort();
  const users = accounts ?? benchAccounts();
  writeFileSync(join(dir, 'passwd'), users.map((u) => `${u.username}:${u.password}\n`).join(''));
  execFileSync('mosquitto_passwd', ['-U', join(dir, 'passwd')]); // hash in place (PBKDF2-SHA512)
  // The same rules as gateway/acl.ts: a gateway only in its own namespace, the service reads everything.
  writeFileSync(join(dir, 'acl'), [
    `user ${SERVICE}`, 'topic read cs/v1/#', 'topic write cs/v1/+/cmd', 'topic write cs/v1/events/#', '',
    ...['up/+', 'state', 'alarm/+', 'health', 'cmd/ack'].map((t) => `pattern write cs/v1/%u/${t}`),
    'pattern read cs/v1/%u/cmd', '',
  ].join('\n'));
  writeFileSync(join(dir, 'mosquitto.conf'), [
    `listener ${port} 127.0.0.1`, 'allow_anonymous false',
    `password_file ${join(dir, 'passwd')}`, `acl_file ${join(dir, 'acl')}`,
    ...MOSQUITTO_TUNING, 'log_dest stderr', 'log_type error', 'log_type warning', '',
  ].join('\n'));
  const proc = spawn('mosquitto', ['-c', join(dir, 'mosquitto.conf')], { stdio: ['ignore', 'ignore', 'inherit'] });
  try {
    await waitForPort(port, proc);
  } catch (err) {
    proc.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
    throw err;
  }
  return {
    name: 'mosquitto',
    url: `mqtt://127.0.0.1:${port}`,
    pid: proc.pid!,
    settle: () => sleep(500),
    async stop() {
      if (proc.exitCode === null) {
        const exited = new Promise((resolve) => proc.once('exit', resolve));
        proc.kill('SIGTERM');
        await exited;
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

export function mosquittoVersion(): string {
  try {
    execFileSync('mosquitto', ['-h'], { encoding: 'utf8' });
  } catch (err) {
    // `mosquitto -h` prints its version and exits with status 3.
    const out = String((err as { stdout?: string }).stdout ?? '');
    const m = /mosquitto version (\S+)/.exec(out);
    if (m) return m[1];
  }
  return 'unknown';
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer().once('error', reject).listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as AddressInfo;
      srv.close(() => resolve(port));
    });
  });
}

async function waitForPort(port: number, proc: ChildProcess): Promise<void> {
  for (let i = 0; i < 100; i++) {
    if (proc.exitCode !== null) throw new Error(`mosquitto exited with code ${proc.exitCode}`);
    const ok = await new Promise<boolean>((resolve) => {
      const s = connect(port, '127.0.0.1').once('connect', () => { s.destroy(); resolve(true); }).once('error', () => resolve(false));
    });
    if (ok) return;
    await sleep(50);
  }
  throw new Error(`mosquitto did not listen on ${port}`);
}
