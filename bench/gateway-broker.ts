/**
 * Child process that runs our MQTT gateway (auth + ACLs on) for the benchmarks, so that
 * the broker has an event loop of its own. Parent protocol (IPC):
 *   -> { type: 'ready', port }          once listening
 *   <- { type: 'settle' }               run a full GC (started with --expose-gc)
 *   -> { type: 'settled', heapUsed }
 *   <- { type: 'snapshot', path }     full GC, then v8.writeHeapSnapshot(path) (bench/heap-conn.ts)
 *   -> { type: 'snapshotted', path }
 *   <- { type: 'stop' }                 stop and exit
 * argv[2]: the credentials file to open (made once by brokers.ts, so that no scrypt hashing
 * happens in this process before the first reading of its memory).
 */
import { writeHeapSnapshot } from 'node:v8';
import { buildGateway } from '../gateway/gateway.ts';
import { CredentialStore } from '../gateway/credentials.ts';

const store = CredentialStore.open(process.argv[2]!);
const gateway = buildGateway({ host: '127.0.0.1', port: 0, credentials: store, watchCredentials: false });
const { port } = await gateway.start();
process.send!({ type: 'ready', port });

process.on('message', async (msg: { type: string; path?: string }) => {
  if (msg.type === 'settle') {
    (globalThis as { gc?: () => void }).gc?.();
    process.send!({ type: 'settled', heapUsed: process.memoryUsage().heapUsed, connections: gateway.stats().connections });
  } else if (msg.type === 'snapshot') {
    (globalThis as { gc?: () => void }).gc?.();
    process.send!({ type: 'snapshotted', path: writeHeapSnapshot(msg.path) });
  } else if (msg.type === 'stop') {
    await gateway.stop();
    process.exit(0);
  }
});
process.on('disconnect', () => process.exit(0));
