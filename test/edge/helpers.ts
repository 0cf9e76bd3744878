import { createServer, type Server, type Socket } from 'node:net';
import { Aedes } from 'aedes';
import type { Reading } from '../../lib/messages.ts';

/**
 * An in-process Aedes on loopback that records every reading published to it, like the cloud's
 * store: `store` keeps the first copy of each (gateway, seq), `deliveries` counts every copy.
 * stop() and start() again bind the same port, as a broker restarted in place.
 */
export interface RecordingBroker {
  readonly port: number;
  readonly url: string;
  /** Every reading in arrival order, with the broker incarnation (0, 1, ...) that got it. */
  deliveries: { reading: Reading; life: number; topic: string }[];
  /** First copy per `${gateway}/${seq}`. */
  store: Map<string, Reading>;
  /** Every message by topic kind, for other assertions. */
  messages: { topic: string; payload: string }[];
  start(): Promise<void>;
  stop(): Promise<void>;
}

export async function recordingBroker(): Promise<RecordingBroker> {
  let life = -1;
  let port = 0;
  let server: Server | undefined;
  let broker: Aedes | undefined;
  const sockets = new Set<Socket>();
  const rec: RecordingBroker = {
    get port() { return port; },
    get url() { return `mqtt://127.0.0.1:${port}`; },
    deliveries: [],
    store: new Map(),
    messages: [],
    async start() {
      life += 1;
      const myLife = life;
      const b = await Aedes.createBroker();
      b.on('publish', (packet, client) => {
        if (!client) return;
        const payload = packet.payload.toString();
        rec.messages.push({ topic: packet.topic, payload });
        const m = /^cs\/v1\/([^/]+)\/up\//.exec(packet.topic);
        if (!m) return;
        const reading = JSON.parse(payload) as Reading;
        rec.deliveries.push({ reading, life: myLife, topic: packet.topic });
        const key = `${m[1]}/${reading.seq}`;
        if (!rec.store.has(key)) rec.store.set(key, reading);
      });
      const s = createServer((sock) => {
        sockets.add(sock);
        sock.on('close', () => sockets.delete(sock));
        b.handle(sock);
      });
      await new Promise<void>((resolve, reject) => { s.once('error', reject); s.listen(port, '127.0.0.1', () => resolve()); });
      port = (s.address() as { port: number }).port;
      server = s;
      broker = b;
    },
    async stop() {
      const s = server;
      const b = broker;
      server = undefined;
      broker = undefined;
      for (const sock of sockets) sock.destroy();
      if (s) await new Promise<void>((resolve) => s.close(() => resolve()));
      if (b) await new Promise<void>((resolve) => b.close(() => resolve()));
    },
  };
  await rec.start();
  return rec;
}

/** Waits until `cond` holds, checking every `everyMs`; the test timeout bounds the wait. */
export async function until(cond: () => boolean | Promise<boolean>, everyMs = 20): Promise<void> {
  while (!(await cond())) await new Promise((r) => setTimeout(r, everyMs));
}
