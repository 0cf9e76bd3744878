import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { connect as netConnect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { MqttClient } from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openCredentialStore } from '../../gateway/credentials.ts';
import { runCli, type Running } from '../helpers/process.ts';
import { collector, connectMqtt, connectPacket, publishPacket } from './helpers.ts';

/**
 * Fault: Aedes crashed with `RangeError: Maximum call stack size exceeded` (aedes.js callPublished) under the
 * MQTT bench's fan-in at full speed. Aedes routes through mqemitter, 100 messages at a time; the rest wait in its
 * queue, and each one finished takes the next from within its own completion. A message no one subscribes to
 * completes synchronously, so a queue of them is walked by recursion, one stack level each
 * (docs/architecture.md#platform-notes). One socket write of a few hundred subscribed PUBLISH packets (their
 * deliveries hold the 100 places) and then thousands no one subscribes to builds that queue on purpose.
 */

const PASS = { gw1: 'gw1-password-0001', cloud: 'cloud-password-001' };

/** Writes `bytes` in one write after the CONNACK on a fresh socket; resolves once the broker has read them all (it acks the last QoS 1 packet). */
function burst(port: number, bytes: Buffer, lastId: number): Promise<void> {
  const tail = Buffer.from([0x40, 0x02, lastId >> 8, lastId & 0xff]);
  return new Promise((resolve, reject) => {
    const s = netConnect(port, '127.0.0.1');
    let seen = Buffer.alloc(0);
    const t = setTimeout(() => { s.destroy(); reject(new Error('no PUBACK for the last packet of the burst')); }, 30_000);
    s.on('error', () => undefined);
    let connacked = false;
    s.on('data', (d: Buffer) => {
      // After the CONNACK: packets sent before it wait in a queue of Aedes' (queueLimit) instead.
      if (!connacked) { connacked = true; s.write(bytes); d = d.subarray(4); }
      seen = Buffer.concat([seen.subarray(-3), d]);
      if (seen.includes(tail)) { clearTimeout(t); s.destroy(); resolve(); }
    });
    s.once('close', () => { clearTimeout(t); reject(new Error('broker closed the connection during the burst')); });
    s.once('connect', () => s.write(connectPacket(`burst-${lastId}`, 'gw1', PASS.gw1)));
  });
}

describe('a burst of PUBLISH packets in one socket write (Aedes stack overflow under fan-in)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'cs-burst-'));
  let broker: Running;
  let port: number;
  let sub: MqttClient;

  beforeAll(async () => {
    const store = openCredentialStore(dir);
    store.create('gw1', 'gateway', PASS.gw1);
    store.create('cloud', 'service', PASS.cloud);
    const config = join(dir, 'gateway.yaml');
    // The fan-in bench's clients are not paced either (bench/brokers.ts).
    writeFileSync(config, 'mqtt:\n  maxPacketSizeBytes: 65536\nlimits:\n  publishesPerSecond: 1000000\n  publishBurst: 1000000\n');
    broker = runCli(['gateway', '--config', config, '--data-dir', dir, '--host', '127.0.0.1', '--mqtt-port', '0'], { CS_LOG_LEVEL: 'fatal' });
    port = Number((await broker.waitFor(/MQTT listening on mqtt:\/\/[\d.]+:(\d+)/))[1]);
    sub = await connectMqtt(`mqtt://127.0.0.1:${port}`, { username: 'cloud', password: PASS.cloud });
    await sub.subscribeAsync('cs/v1/gw1/up/+', { qos: 0 });
  });

  afterAll(async () => {
    await sub?.endAsync(true).catch(() => undefined);
    await broker.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  for (const qos of [0, 1] as const) {
    it(`stays up and keeps routing after 300 subscribed and 30,000 unsubscribed QoS ${qos} publishes in one write`, async () => {
      const got = collector(sub);
      const subscribed = Array.from({ length: 300 }, (_, i) => publishPacket('cs/v1/gw1/up/d1', `r${i}`, qos, i + 1));
      const unsubscribed = Array.from({ length: 30_000 }, (_, i) => publishPacket('cs/v1/gw1/health', 'h', qos, (i % 60_000) + 301));
      const last = 30_301;
      await burst(port, Buffer.concat([...subscribed, ...unsubscribed, publishPacket('cs/v1/gw1/health', 'end', 1, last)]), last)
        .catch((err: Error) => { throw new Error(`${err.message}; broker exit code ${broker.child.exitCode}, output:\n${broker.output().slice(-3000)}`); });
      expect(broker.child.exitCode, broker.output()).toBeNull();
      await got.waitFor(300);
      expect(got.messages.slice(0, 300).map((m) => m.payload)).toEqual(Array.from({ length: 300 }, (_, i) => `r${i}`));
      sub.removeAllListeners('message');
    }, 60_000);
  }
});
