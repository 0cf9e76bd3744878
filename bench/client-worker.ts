/**
 * A child process holding mqtt.js clients (MQTT 3.1.1) for the benchmarks. The parent
 * sends { type: 'start', ...Job } and the worker answers 'ready', then:
 *   sub:  records the latency of every message (payload `ts` to arrival);
 *         after 'drain' it reports 'result' once all expected arrived or none for 3 s.
 *   pub:  on 'go', every client publishes `count` readings with at most `window` unacknowledged
 *         (QoS 1: until PUBACK; QoS 0: until written to the socket), `rate` per second each if
 *         given, else as fast as it may; reports 'done'.
 *   idle: connects its clients and keeps them open until 'stop'.
 */
import { connectAsync, type MqttClient } from 'mqtt';
import { type Account, upTopic } from './identities.ts';
import { nowMs, summarize } from './stats.ts';

export type QoS = 0 | 1;

export type Job =
  | { role: 'sub'; url: string; account: Account; topic: string; qos: QoS; expected: number }
  | { role: 'pub'; url: string; accounts: Account[]; qos: QoS; count: number; window: number; rate?: number }
  | { role: 'idle'; url: string; accounts: Account[]; concurrency: number };

export interface SubResult { received: number; firstSent: number; lastReceived: number; p50: number; p99: number; max: number }

const clients: MqttClient[] = [];
const send = (msg: object): void => void process.send!(msg);
const onParent = (type: string, fn: () => void): void => {
  process.on('message', (m: { type: string }) => { if (m.type === type) fn(); });
};

function open(url: string, account: Account, clientId: string): Promise<MqttClient> {
  return connectAsync(url, {
    ...account, clientId, protocolVersion: 4, clean: true, keepalive: 60, reconnectPeriod: 0, connectTimeout: 60_000,
  }).then((c) => { clients.push(c); return c; });
}

/** Runs `fn` over `items` with at most `limit` running at once. */
async function pool<T>(items: T[], limit: number, fn: (item: T, i: number) => Promise<void>): Promise<void> {
  let next = 0;
  const lane = async (): Promise<void> => { while (next < items.length) { const i = next++; await fn(items[i], i); } };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, lane));
}

/** A realistic reading of about 150 bytes; `ts` is the send time in ms. */
function reading(gateway: string, seq: number): string {
  return JSON.stringify({
    ts: nowMs(), gw: gateway, dev: 'dev', seq,
    m: { water_level_cm: 100 + (seq % 500) / 10, temperature_c: 18.4, battery_v: 3.62, rssi_dbm: -71 }, st: 'ok',
  });
}

async function subscriber(job: Extract<Job, { role: 'sub' }>): Promise<void> {
  const client = await open(job.url, job.account, `bench-sub-${process.pid}`);
  let latencies = new Float64Array(job.expected);
  let received = 0;
  let firstSent = Infinity;
  let lastReceived = 0;
  let reported = false;
  const report = (): void => {
    if (reported) return;
    reported = true;
    const s = summarize(latencies.subarray(0, received));
    send({ type: 'result', received, firstSent, lastReceived, p50: s.p50, p99: s.p99, max: s.max } satisfies SubResult & { type: string });
  };
  client.on('message', (_topic, payload) => {
    const now = nowMs();
    const ts = (JSON.parse(payload.toString()) as { ts: number }).ts;
    if (received === latencies.length) { const grown = new Float64Array(received * 2); grown.set(latencies); latencies = grown; }
    latencies[received++] = now - ts;
    if (ts < firstSent) firstSent = ts;
    lastReceived = now;
    if (received >= job.expected) report();
  });
  const granted = await client.subscribeAsync(job.topic, { qos: job.qos });
  if (granted[0]?.qos !== job.qos) throw new Error(`subscription to ${job.topic} refused: ${JSON.stringify(granted)}`);
  onParent('drain', () => {
    const timer = setInterval(() => {
      if (reported || nowMs() - lastReceived > 3_000) { clearInterval(timer); report(); }
    }, 200);
  });
  send({ type: 'ready' });
}

async function publishers(job: Extract<Job, { role: 'pub' }>): Promise<void> {
  const conns: MqttClient[] = [];
  await pool(job.accounts, 20, async (a, i) => { conns[i] = await open(job.url, a, `bench-pub-${process.pid}-${i}`); });
  send({ type: 'ready' });
  onParent('go', async () => {
    const start = nowMs();
    let errors = 0;
    await Promise.all(conns.map(async (client, i) => {
      const gateway = job.accounts[i].username;
      const topic = upTopic(gateway);
      let inflight = 0;
      let wake: (() => void) | undefined;
      const interval = job.rate ? 1000 / job.rate : 0;
      const offset = (interval * i) / conns.length; // spread the paced publishers evenly
      for (let seq = 0; seq < job.count; seq++) {
        const wait = start + offset + seq * interval - nowMs();
        if (wait >= 1) await new Promise((r) => setTimeout(r, wait));
        while (inflight >= job.window) await new Promise<void>((r) => { wake = r; });
        inflight++;
        client.publish(topic, reading(gateway, seq), { qos: job.qos }, (err) => {
          if (err) errors++;
          inflight--;
          const w = wake; wake = undefined; w?.();
        });
      }
      while (inflight > 0) await new Promise<void>((r) => { wake = r; });
    }));
    send({ type: 'done', sent: job.count * conns.length, errors, elapsedMs: nowMs() - start });
  });
}

async function idle(job: Extract<Job, { role: 'idle' }>): Promise<void> {
  const start = nowMs();
  let failed = 0;
  let firstError = '';
  await pool(job.accounts, job.concurrency, async (a, i) => {
    try {
      await open(job.url, a, `bench-idle-${process.pid}-${i}`);
    } catch (err) {
      failed++;
      firstError ||= (err as Error).message;
    }
  });
  send({ type: 'ready', connected: clients.length, failed, firstError, elapsedMs: nowMs() - start });
}

onParent('stop', () => {
  for (const c of clients) c.end(true);
  setTimeout(() => process.exit(0), 200);
});
process.on('disconnect', () => process.exit(0));
process.once('message', (m: { type: string } & Job) => {
  if (m.type !== 'start') return;
  const run = m.role === 'sub' ? subscriber(m) : m.role === 'pub' ? publishers(m) : idle(m);
  run.catch((err: Error) => { send({ type: 'error', message: err.message }); setTimeout(() => process.exit(1), 100); });
});
