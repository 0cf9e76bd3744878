import { connect as netConnect, type Socket } from 'node:net';
import type { MqttClient } from 'mqtt';
import { afterEach, describe, expect, it } from 'vitest';
import { CredentialStore } from '../../gateway/credentials.ts';
import { buildGateway, type Gateway } from '../../gateway/gateway.ts';
import { createGatewayMetrics } from '../../gateway/metrics.ts';
import { eventually } from '../helpers/process.ts';
import { collector, connectMqtt, connectPacket, subscribePacket } from './helpers.ts';

/**
 * A frozen subscriber (a socket that stops reading) must not stall the others
 * (moscajs/aedes PR #1060): once its socket stays full for drainTimeout it is dropped.
 */

const clients: MqttClient[] = [];
const sockets: Socket[] = [];
let gateway: Gateway | undefined;

afterEach(async () => {
  for (const c of clients.splice(0)) await c.endAsync(true).catch(() => undefined);
  for (const s of sockets.splice(0)) s.destroy();
  await gateway?.stop();
  gateway = undefined;
});

describe('a frozen subscriber', () => {
  it('is dropped after drainTimeout while the other subscribers receive every message', async () => {
    const store = CredentialStore.memory();
    store.create('gw1', 'gateway', 'gw1-password-0001');
    store.create('cloud', 'service', 'cloud-password-001');
    const metrics = createGatewayMetrics();
    gateway = buildGateway({ credentials: store, drainTimeout: 300, metrics });
    const { port } = await gateway.start();
    const url = `mqtt://127.0.0.1:${port}`;

    // The frozen one: CONNECT and SUBSCRIBE by hand, read the CONNACK and SUBACK, then never read again.
    const frozen = netConnect(port, '127.0.0.1');
    sockets.push(frozen);
    await new Promise((r) => frozen.once('connect', r));
    frozen.write(connectPacket('frozen', 'cloud', 'cloud-password-001'));
    frozen.write(subscribePacket(1, 'cs/v1/#', 0));
    await new Promise<void>((resolve) => {
      let got = Buffer.alloc(0);
      const onData = (d: Buffer) => {
        got = Buffer.concat([got, d]);
        if (got.length >= 4 + 5) { frozen.off('data', onData); frozen.pause(); resolve(); } // CONNACK (4) + SUBACK (5)
      };
      frozen.on('data', onData);
    });

    const healthy = [await connectMqtt(url, { username: 'cloud', password: 'cloud-password-001', clientId: 'h1' }),
      await connectMqtt(url, { username: 'cloud', password: 'cloud-password-001', clientId: 'h2' })];
    clients.push(...healthy);
    const got = healthy.map((c) => collector(c));
    for (const c of healthy) await c.subscribeAsync('cs/v1/#', { qos: 1 });
    const gw1 = await connectMqtt(url, { username: 'gw1', password: 'gw1-password-0001' });
    clients.push(gw1);

    // About 16 MB: far more than the loopback socket buffers of the frozen client hold.
    const N = 256;
    const body = Buffer.alloc(63 * 1024, 0x61);
    for (let i = 0; i < N; i++) await gw1.publishAsync('cs/v1/gw1/up/d1', body, { qos: 1 });

    for (const g of got) await g.waitFor(N);
    expect(got.map((g) => g.messages.length)).toEqual([N, N]);
    await eventually(async () => (await metrics.drops.get()).values.find((v) => v.labels.reason === 'drain-timeout')?.value === 1);
    await eventually(() => gateway!.stats().connections === 3); // two healthy subscribers and the publisher
  });
});
