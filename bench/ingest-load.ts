/**
 * The ingest bench's load generator, a process of its own (bench/ingest-bench.ts): one mqtt.js client per
 * gateway (MQTT 3.1.1, QoS 1), each keeping at most `window` readings unacknowledged, round-robin over its
 * covers. Parent protocol (IPC):
 *   <- { type: 'start', url, gateways, devices, readings, window }
 *   -> { type: 'connected' }    every client has its CONNACK (logins are not the ingest's cost)
 *   <- { type: 'go' }
 *   -> { type: 'done', acked, published, firstSend, lastAck }   every reading acknowledged (PUBACK)
 */
import mqtt, { type MqttClient } from 'mqtt';
import { account, gatewayName, upTopic } from './identities.ts';
import { deviceName, readingPayload } from './ingest-setup.ts';
import { nowMs } from './stats.ts';

interface Start { url: string; gateways: number; devices: number; readings: number; window: number }

async function run(o: Start): Promise<void> {
  const perGateway = Math.floor(o.readings / o.gateways);
  const clients: MqttClient[] = [];
  await Promise.all(Array.from({ length: o.gateways }, (_, g) => new Promise<void>((resolve, reject) => {
    const { username, password } = account(gatewayName(g));
    const c = mqtt.connect(o.url, { protocolVersion: 4, clientId: `${username}-load`, username, password, reconnectPeriod: 1000, connectTimeout: 30_000 });
    clients[g] = c;
    c.once('connect', () => resolve());
    c.once('error', reject);
  })));
  process.send!({ type: 'connected' });
  await new Promise<void>((resolve) => process.once('message', () => resolve()));
  let acked = 0;
  let published = 0;
  let lastAck = 0;
  const firstSend = nowMs();
  await Promise.all(clients.map((c, g) => new Promise<void>((resolve) => {
    let next = 0;
    let done = 0;
    const ts = new Date().toISOString();
    const send = (): void => {
      const seq = ++next;
      const d = seq % o.devices;
      published++;
      c.publish(upTopic(gatewayName(g), deviceName(g, d)), readingPayload(g, d, seq, ts), { qos: 1 }, (err) => {
        if (err) return; // mqtt.js keeps it and resends after a reconnect
        acked++;
        done++;
        lastAck = nowMs();
        if (next < perGateway) send();
        else if (done === perGateway) resolve();
      });
    };
    for (let i = 0; i < Math.min(o.window, perGateway); i++) send();
  })));
  process.send!({ type: 'done', acked, published, firstSend, lastAck });
  await Promise.all(clients.map((c) => c.endAsync()));
}

process.on('message', (m: { type: string } & Start) => {
  if (m.type === 'start') run(m).catch((err: Error) => process.send!({ type: 'error', message: err.message }));
  else if (m.type === 'stop') process.exit(0);
});
process.on('disconnect', () => process.exit(0));
