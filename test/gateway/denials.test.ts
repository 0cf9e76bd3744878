/**
 * What a refused publish or subscription does, and what it writes to the log (issue 10, finding 10):
 * README and behaviour agree that an out-of-namespace publish closes the connection, and one
 * client's denials write a few warning lines and a count, not one line each.
 */
import { Writable } from 'node:stream';
import type { MqttClient } from 'mqtt';
import pino from 'pino';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { CredentialStore } from '../../gateway/credentials.ts';
import { buildGateway, type Gateway } from '../../gateway/gateway.ts';
import { collector, connectMqtt, connectPacket, publishPacket, rawMqtt, type RawMqtt } from './helpers.ts';

const PASS = { gw1: 'gw1-password-0001', cloud: 'cloud-password-001' };
let store: CredentialStore;
let gateway: Gateway;
let lines: string[];
const clients: MqttClient[] = [];
const raws: RawMqtt[] = [];

beforeEach(async () => {
  store = CredentialStore.memory();
  store.create('gw1', 'gateway', PASS.gw1);
  store.create('cloud', 'service', PASS.cloud);
  lines = [];
  const logger = pino({ level: 'info' }, new Writable({ write(c, _e, cb) { lines.push(String(c)); cb(); } }));
  gateway = buildGateway({ credentials: store, logger, warnLimit: { windowMs: 60_000, max: 5 } });
  await gateway.start();
});

afterEach(async () => {
  for (const c of clients.splice(0)) await c.endAsync(true).catch(() => undefined);
  for (const r of raws.splice(0)) r.destroy();
  await gateway.stop();
});

const logged = (msg: string) => lines.map((l) => JSON.parse(l)).filter((l) => l.msg === msg);

describe('refused publishes and subscriptions', () => {
  it('an out-of-namespace publish is never acknowledged: no PUBACK, the connection is closed (MQTT-3.3.5-2), no subscriber gets it, one warning with its code', async () => {
    const cloud = await connectMqtt(`mqtt://127.0.0.1:${gateway.port}`, { username: 'cloud', password: PASS.cloud });
    clients.push(cloud);
    const got = collector(cloud);
    await cloud.subscribeAsync('cs/v1/#', { qos: 1 });

    const raw = await rawMqtt(gateway.port);
    raws.push(raw);
    raw.send(connectPacket('edge-1', 'gw1', PASS.gw1));
    expect(await raw.next('connack')).toMatchObject({ returnCode: 0 });
    raw.send(publishPacket('cs/v1/gw2/up/d1', '{"seq":1}', 1, 7));
    await expect(raw.next('puback')).rejects.toThrow(/closed before puback/);
    await raw.closed;

    await cloud.publishAsync('cs/v1/gw1/cmd', '{"id":"after"}', { qos: 1 });
    await got.waitFor(1);
    expect(got.messages.map((m) => m.topic)).toEqual(['cs/v1/gw1/cmd']);
    expect(logged('mqtt publish refused: closing the connection')).toEqual([
      expect.objectContaining({ username: 'gw1', topic: 'cs/v1/gw2/up/d1', code: 'CS_GW_PUBLISH_DENIED' }),
    ]);
  });

  it('one client\'s denials are rate-limited in the log: 30 refused subscriptions write 5 warnings and one line counting 25 suppressed', async () => {
    const gw1 = await connectMqtt(`mqtt://127.0.0.1:${gateway.port}`, { username: 'gw1', password: PASS.gw1 });
    clients.push(gw1);
    for (let i = 0; i < 30; i++) {
      // mqtt.js rejects a SUBACK of 0x80.
      await expect(gw1.subscribeAsync(`cs/v1/gw2/cmd/${i}`, { qos: 1 })).rejects.toThrow(/Subscribe error/);
    }
    expect(gateway.stats().denied).toBe(30);
    expect(gw1.connected).toBe(true);
    await gateway.stop(); // reports what the window still holds
    expect(logged('mqtt subscribe refused')).toHaveLength(5);
    expect(logged('mqtt warnings suppressed for this source')).toEqual([expect.objectContaining({ source: 'gw1', suppressed: 25 })]);
  });
});
