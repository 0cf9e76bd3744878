/**
 * The floor under our broker's memory (bench/conn-bench.ts): Aedes as its README starts it, on a plain
 * `net` server, with nothing of ours but a password check of the bench identities (no ACLs, no limits,
 * no logging), in plain JavaScript (no build, no tsx), with the gateway's V8 flags and mqtt-packet's
 * number cache off as ours has them. Same IPC protocol as gateway-broker.ts: ready, settle, stop.
 */
import { createRequire } from 'node:module';
import { createServer } from 'node:net';
import { applyCommandFlags } from '../bin/runtime-flags.js';

applyCommandFlags('gateway');
const { Aedes } = await import('aedes');
createRequire(import.meta.resolve('aedes'))('mqtt-packet').writeToStream.cacheNumbers = false;
const passwords = new Map(JSON.parse(process.argv[2] ?? '[]'));
const broker = await Aedes.createBroker({
  authenticate: (_client, username, password, done) => done(null, password !== undefined && passwords.get(username) === password.toString()),
});
const server = createServer(broker.handle);
server.listen(0, '127.0.0.1', () => process.send({ type: 'ready', port: server.address().port }));
process.on('message', (msg) => {
  if (msg.type === 'settle') {
    globalThis.gc?.();
    process.send({ type: 'settled', heapUsed: process.memoryUsage().heapUsed });
  } else if (msg.type === 'stop') {
    server.close();
    broker.close(() => process.exit(0));
  }
});
process.on('disconnect', () => process.exit(0));
