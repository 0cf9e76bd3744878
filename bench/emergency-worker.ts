/**
 * A child process holding light simulated gateways for the emergency bench: mqtt.js clients
 * (MQTT 3.1.1), each its own gateway identity, subscribed (QoS 1) to its own `cs/v1/{gw}/cmd`,
 * with a retained birth on `cs/v1/{gw}/state`, acknowledging every command at once on
 * `cs/v1/{gw}/cmd/ack` with `{ id, outcome: 'ok', ts }` (QoS 1), as an edge gateway does.
 * Births come in a phase of their own, after every gateway of every process has subscribed:
 * Aedes' memory persistence scans every retained message for each new subscription
 * (aedes-persistence asyncPersistence.js, retainedMessagesByPattern), which made interleaved
 * births cost O(n^2) while 10,000 gateways connect.
 * Parent protocol (IPC):
 *   <- { type: 'start', url, gateways: string[], concurrency }
 *   -> { type: 'ready', connected, failed, firstError, elapsedMs }   all connected and subscribed
 *   <- { type: 'birth' }  -> { type: 'born', elapsedMs }            every retained birth PUBACKed
 *   <- { type: 'count' }  -> { type: 'counted', commands, acks, errors }
 *   <- { type: 'stop' }   close every client and exit
 */
import { connectAsync, type MqttClient } from 'mqtt';
import { topics } from '../lib/topics.ts';
import { account } from './identities.ts';

export interface EmergencyWorkerJob {
  url: string;
  gateways: string[];
  /** Connections opened at once. */
  concurrency: number;
}

const clients: MqttClient[] = [];
const counters = { commands: 0, acks: 0, errors: 0 };
const send = (msg: object): void => void process.send!(msg);

async function gateway(url: string, gw: string): Promise<void> {
  const client = await connectAsync(url, {
    ...account(gw), clientId: gw, protocolVersion: 4, clean: true, keepalive: 60, reconnectPeriod: 0, connectTimeout: 60_000,
  });
  clients.push(client);
  const ackTopic = topics.cmdAck(gw);
  client.on('message', (_topic, payload) => {
    counters.commands++;
    const cmd = JSON.parse(payload.toString()) as { id?: unknown };
    client.publish(ackTopic, JSON.stringify({ id: cmd.id, outcome: 'ok', ts: new Date().toISOString() }), { qos: 1 }, (err) => {
      if (err) counters.errors++;
      else counters.acks++;
    });
  });
  const granted = await client.subscribeAsync(topics.cmd(gw), { qos: 1 });
  if (granted[0]?.qos !== 1) throw new Error(`subscription of ${gw} to its cmd topic refused: ${JSON.stringify(granted)}`);
}

async function births(): Promise<void> {
  const started = performance.now();
  await Promise.all(clients.map((client) => {
    const gw = client.options.username!;
    return client.publishAsync(topics.state(gw), JSON.stringify({ online: true, bdSeq: 1, ts: new Date().toISOString() }), { qos: 1, retain: true });
  }));
  send({ type: 'born', elapsedMs: performance.now() - started });
}

async function start(job: EmergencyWorkerJob): Promise<void> {
  const started = performance.now();
  let failed = 0;
  let firstError = '';
  let next = 0;
  const lane = async (): Promise<void> => {
    while (next < job.gateways.length) {
      const gw = job.gateways[next++];
      try {
        await gateway(job.url, gw);
      } catch (err) {
        failed++;
        firstError ||= `${gw}: ${(err as Error).message}`;
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(job.concurrency, job.gateways.length) }, lane));
  send({ type: 'ready', connected: clients.length, failed, firstError, elapsedMs: performance.now() - started });
}

process.on('message', (m: { type: string } & Partial<EmergencyWorkerJob>) => {
  if (m.type === 'start') {
    start(m as EmergencyWorkerJob).catch((err: Error) => { send({ type: 'error', message: err.message }); setTimeout(() => process.exit(1), 100); });
  } else if (m.type === 'birth') {
    births().catch((err: Error) => { send({ type: 'error', message: err.message }); setTimeout(() => process.exit(1), 100); });
  } else if (m.type === 'count') {
    send({ type: 'counted', ...counters });
  } else if (m.type === 'stop') {
    for (const c of clients) c.end(true);
    setTimeout(() => process.exit(0), 200);
  }
});
process.on('disconnect', () => process.exit(0));
