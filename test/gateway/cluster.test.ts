import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { MqttClient } from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openCredentialStore } from '../../gateway/credentials.ts';
import { eventually, runCli, type Running } from '../helpers/process.ts';
import { collector, connectMqtt, deleteKeys, REDIS_URL, redisAvailable, uniquePrefix } from './helpers.ts';

/**
 * Two broker processes (`citysteward gateway`) sharing one Redis: Redis persistence and
 * mqemitter-redis together (moscajs/aedes #531), so routing and offline sessions span brokers.
 */

const available = await redisAvailable();
if (!available) console.warn(`[skip] gateway cluster tests: no Redis at ${REDIS_URL}`);

describe.skipIf(!available)('two gateway processes on one Redis', () => {
  const prefix = uniquePrefix('cluster');
  const dir = mkdtempSync(join(tmpdir(), 'cs-cluster-'));
  const brokers: { run: Running; mqtt: string; http: string }[] = [];
  const clients: MqttClient[] = [];
  const PASS = { gw1: 'gw1-password-0001', cloud: 'cloud-password-001' };

  beforeAll(async () => {
    const store = openCredentialStore(dir);
    store.create('gw1', 'gateway', PASS.gw1);
    store.create('cloud', 'service', PASS.cloud);
    const config = join(dir, 'gateway.yaml');
    writeFileSync(config, `redis:\n  url: ${REDIS_URL}\n  keyPrefix: "${prefix}"\nhttp:\n  host: 127.0.0.1\n  port: 0\n`);
    for (let i = 0; i < 2; i++) {
      const run = runCli(['gateway', '--config', config, '--data-dir', dir, '--host', '127.0.0.1', '--mqtt-port', '0'], { CS_LOG_LEVEL: 'warn' });
      const [, mqtt] = await run.waitFor(/gateway: MQTT listening on (mqtt:\/\/\S+)/);
      const [, http] = await run.waitFor(/gateway: HTTP on (http:\/\/\S+)/);
      brokers.push({ run, mqtt, http });
    }
  });

  afterAll(async () => {
    for (const c of clients.splice(0)) await c.endAsync(true).catch(() => undefined);
    for (const b of brokers) await b.run.stop();
    await deleteKeys(prefix);
    rmSync(dir, { recursive: true, force: true });
  });

  async function client(url: string, username: 'gw1' | 'cloud', extra: object = {}): Promise<MqttClient> {
    const c = await connectMqtt(url, { username, password: PASS[username], ...extra });
    clients.push(c);
    return c;
  }

  const connections = async (http: string) => ((await (await fetch(`${http}/healthz`)).json()) as { connections: number }).connections;

  it('delivers to a subscriber on one broker what a gateway publishes on the other', async () => {
    const [a, b] = brokers;
    const sub = await client(a.mqtt, 'cloud', { clientId: 'live' });
    const got = collector(sub);
    await sub.subscribeAsync('cs/v1/+/up/+', { qos: 1 });
    const gw1 = await client(b.mqtt, 'gw1');
    // The subscription reaches broker B over Redis shortly after the SUBACK; probe until it has.
    let n = 0;
    await eventually(async () => {
      await gw1.publishAsync('cs/v1/gw1/up/d1', `probe-${n++}`, { qos: 1 });
      return got.messages.length > 0;
    }, 10_000, 50);
    expect(got.messages[0].topic).toBe('cs/v1/gw1/up/d1');
    expect(got.messages[0].payload).toMatch(/^probe-\d+$/);
    await sub.endAsync();
    await gw1.endAsync();
  });

  it('queues QoS 1 messages for a persistent session offline on one broker and delivers them when it reconnects to the other', async () => {
    const [a, b] = brokers;
    const first = await client(a.mqtt, 'cloud', { clientId: 'worker-1', clean: false });
    await first.subscribeAsync('cs/v1/+/up/+', { qos: 1 });
    const gw1 = await client(b.mqtt, 'gw1', { clientId: 'edge' });
    const warm = collector(first);
    let n = 0;
    await eventually(async () => {
      await gw1.publishAsync('cs/v1/gw1/up/d2', `warm-${n++}`, { qos: 1 });
      return warm.messages.length > 0;
    }, 10_000, 50);
    await first.endAsync();
    await eventually(async () => (await connections(a.http)) === 0);

    for (let i = 1; i <= 5; i++) await gw1.publishAsync('cs/v1/gw1/up/d2', `queued-${i}`, { qos: 1 });

    const again = (await import('mqtt')).default.connect(b.mqtt, {
      protocolVersion: 4, reconnectPeriod: 0, username: 'cloud', password: PASS.cloud, clientId: 'worker-1', clean: false,
    });
    clients.push(again);
    const got = collector(again);
    const sessionPresent = await new Promise<boolean>((resolve, reject) => {
      again.once('connect', (ack) => resolve(ack.sessionPresent));
      again.once('error', reject);
      again.once('close', () => reject(new Error('connection closed before CONNACK')));
    });
    expect(sessionPresent).toBe(true);
    await eventually(() => got.messages.filter((m) => m.payload.startsWith('queued-')).length === 5);
    expect(got.messages.filter((m) => m.payload.startsWith('queued-')).map((m) => m.payload))
      .toEqual(['queued-1', 'queued-2', 'queued-3', 'queued-4', 'queued-5']);
    await again.endAsync();
  }, 60_000); // its waits (Redis propagation, disconnect) add up past 30 s on a loaded 2-core machine
});
