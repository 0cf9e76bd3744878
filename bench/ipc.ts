/** Child processes spoken to over IPC: fork a bench worker and wait for its typed messages. */
import { fork, type ChildProcess } from 'node:child_process';
import { isAbsolute } from 'node:path';
import { fileURLToPath } from 'node:url';

export interface Message {
  type: string;
  [key: string]: unknown;
}

export class Worker {
  readonly child: ChildProcess;
  private readonly inbox: Message[] = [];
  private waiter: (() => void) | undefined;
  private exited: Error | undefined;

  /** Forks `bench/{file}` under tsx, or a built `.js` file (an absolute path) as it is; extra node flags in `nodeArgs`. */
  constructor(file: string, nodeArgs: string[] = [], args: string[] = []) {
    const built = isAbsolute(file) && file.endsWith('.js');
    const path = built ? file : fileURLToPath(new URL(file, import.meta.url));
    this.child = fork(path, args, { execArgv: [...(built ? [] : ['--import', 'tsx']), ...nodeArgs], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    this.child.on('message', (m: Message) => {
      this.inbox.push(m);
      this.waiter?.();
    });
    this.child.on('exit', (code, signal) => {
      this.exited = new Error(`${file} exited (code ${code}, signal ${signal})`);
      this.waiter?.();
    });
  }

  get pid(): number {
    return this.child.pid!;
  }

  send(msg: Message): void {
    this.child.send(msg);
  }

  /** The next message of `type` (earlier messages of other types are skipped); rejects on exit or timeout. */
  async next<T extends object = Message>(type: string, timeoutMs = 120_000): Promise<T> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const i = this.inbox.findIndex((m) => m.type === type);
      if (i >= 0) return this.inbox.splice(i, 1)[0] as T;
      const error = this.inbox.find((m) => m.type === 'error');
      if (error) throw new Error(`worker error: ${String(error.message)}`);
      if (this.exited) throw this.exited;
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timed out waiting for '${type}' from worker ${this.pid}`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.waiter = () => { clearTimeout(timer); resolve(); };
      });
      this.waiter = undefined;
    }
  }

  /** Asks the worker to stop, then kills it if it has not exited after `graceMs`. */
  async stop(graceMs = 5_000): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    const exited = new Promise<void>((resolve) => this.child.once('exit', () => resolve()));
    if (this.child.connected) this.child.send({ type: 'stop' });
    const timer = setTimeout(() => this.child.kill('SIGKILL'), graceMs);
    await exited;
    clearTimeout(timer);
  }
}

/** Runs `fn` on each worker and waits for all. */
export const all = <T>(workers: Worker[], fn: (w: Worker) => Promise<T>): Promise<T[]> => Promise.all(workers.map(fn));
