/**
 * Heap snapshots of our broker (bench/gateway-worker.ts) idle, then with N idle authenticated
 * connections, diffed by constructor: `node --import tsx bench/heap-conn.ts [N] [DIR]`.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startOurs } from './brokers.ts';
import { GATEWAY_COUNT, account, gatewayName } from './identities.ts';
import { Worker } from './ipc.ts';

const n = Number(process.argv[2] ?? 2000);
const dir = process.argv[3] ?? mkdtempSync(join(tmpdir(), 'cs-heap-'));
const broker = await startOurs();
const snap = async (name: string): Promise<string> => broker.snapshot!(join(dir, name));
try {
  // Warm-up as the connections bench does: every identity once.
  const warm = new Worker('client-worker.ts');
  warm.send({ type: 'start', role: 'idle', url: broker.url, accounts: Array.from({ length: GATEWAY_COUNT }, (_, i) => account(gatewayName(i))), concurrency: 20 });
  await warm.next('ready');
  await warm.stop();
  await broker.settle();
  const before = await snap('before.heapsnapshot');
  const w = new Worker('client-worker.ts');
  w.send({ type: 'start', role: 'idle', url: broker.url, accounts: Array.from({ length: n }, (_, i) => account(gatewayName(i % GATEWAY_COUNT))), concurrency: 20 });
  await w.next('ready', 300_000);
  await new Promise((r) => setTimeout(r, 2000));
  await broker.settle();
  const after = await snap('after.heapsnapshot');
  console.log(`snapshots: ${before} ${after}\ndiff: node --import tsx bench/heap-diff.ts ${before} ${after} ${n}`);
  await w.stop();
} finally {
  await broker.stop();
}
