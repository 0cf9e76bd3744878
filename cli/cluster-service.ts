import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream, type WriteStream } from 'node:fs';
import { fileURLToPath } from 'node:url';

/** The `citysteward` entry, run by the cluster's child processes. */
export const CITYSTEWARD_BIN = fileURLToPath(new URL('../bin/citysteward.js', import.meta.url));

/**
 * One service of a cluster as a child process (`citysteward ARGS`): its output appended to a log file and
 * kept (the last 64 KiB) for `waitFor`; start() again after an exit or a kill runs it anew with the same args.
 */
export interface Service {
  readonly name: string;
  readonly pid: number | undefined;
  readonly running: boolean;
  /** Starts the process and waits for `ready` in its output (default 60 s). */
  start(): Promise<RegExpMatchArray>;
  /** SIGKILL, then waits for the exit. */
  kill(): Promise<void>;
  /** SIGTERM (a clean stop), SIGKILL after `graceMs`; waits for the exit. */
  stop(graceMs?: number): Promise<void>;
  /** Output of this run so far (the last 64 KiB). */
  output(): string;
  /** Changes the arguments of later starts (e.g. a fixed port after the first start chose one). */
  setArgs(args: string[]): void;
}

const KEEP = 64 * 1024;

export function service(o: { name: string; args: string[]; ready: RegExp; logFile: string; env?: NodeJS.ProcessEnv; readyTimeoutMs?: number }): Service {
  let args = o.args;
  let child: ChildProcess | undefined;
  let exited: Promise<void> = Promise.resolve();
  let out = '';
  let log: WriteStream | undefined;
  const waiters = new Set<() => void>();

  const self: Service = {
    name: o.name,
    get pid() { return child?.pid; },
    get running() { return child !== undefined && child.exitCode === null && child.signalCode === null; },
    setArgs(a) { args = a; },
    output: () => out,
    start() {
      if (self.running) throw new Error(`${o.name} is already running`);
      out = '';
      log ??= createWriteStream(o.logFile, { flags: 'a' });
      log.write(`--- ${new Date().toISOString()} start ${o.name}: citysteward ${args.join(' ')}\n`);
      const c = spawn(process.execPath, [CITYSTEWARD_BIN, ...args], { env: { ...process.env, ...o.env }, stdio: ['ignore', 'pipe', 'pipe'] });
      child = c;
      const onData = (b: Buffer) => {
        out = (out + b.toString()).slice(-KEEP);
        log?.write(b);
        for (const w of waiters) w();
      };
      c.stdout!.on('data', onData);
      c.stderr!.on('data', onData);
      exited = new Promise((resolve) => c.once('exit', (code, signal) => {
        log?.write(`--- ${new Date().toISOString()} ${o.name} exited (${signal ?? code})\n`);
        for (const w of waiters) w();
        resolve();
      }));
      return new Promise((resolve, reject) => {
        const check = () => {
          const m = out.match(o.ready);
          if (m) { done(); resolve(m); } else if (c.exitCode !== null || c.signalCode !== null) { done(); reject(new Error(`${o.name} exited before it was ready:\n${out.slice(-4000)}`)); }
        };
        const timer = setTimeout(() => { done(); reject(new Error(`${o.name} not ready within ${o.readyTimeoutMs ?? 180_000} ms:\n${out.slice(-4000)}`)); }, o.readyTimeoutMs ?? 180_000);
        const done = () => { clearTimeout(timer); waiters.delete(check); };
        waiters.add(check);
        check();
      });
    },
    async kill() {
      if (self.running) child!.kill('SIGKILL');
      await exited;
    },
    async stop(graceMs = 15_000) {
      if (self.running) {
        child!.kill('SIGTERM');
        const t = setTimeout(() => { if (self.running) child!.kill('SIGKILL'); }, graceMs);
        await exited;
        clearTimeout(t);
      }
      await exited;
    },
  };
  return self;
}

/** The port of a URL. */
export function portOf(url: string): number {
  return Number(new URL(url).port);
}
