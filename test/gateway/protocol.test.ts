/** Protocol clauses checked with a raw protocol client (mqtt-packet on a socket), beside Mosquitto's answers. */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { CredentialStore } from '../../gateway/credentials.ts';
import { buildGateway, type Gateway } from '../../gateway/gateway.ts';
import { connectPacket, rawMqtt, type RawMqtt } from './helpers.ts';

const PASS = 'gw1-password-0001';
let store: CredentialStore;
let gateway: Gateway;
const raws: RawMqtt[] = [];

beforeEach(async () => {
  store = CredentialStore.memory();
  store.create('gw1', 'gateway', PASS);
  gateway = buildGateway({ credentials: store });
  await gateway.start();
});

afterEach(async () => {
  for (const r of raws.splice(0)) r.destroy();
  await gateway.stop();
});

async function connack(clientId: string, clean: boolean, protocolVersion: 3 | 4 = 4): Promise<{ returnCode?: number; sessionPresent?: boolean; closed: boolean }> {
  const raw = await rawMqtt(gateway.port);
  raws.push(raw);
  // Raw bytes: mqtt-packet itself refuses to generate these CONNECTs.
  raw.send(connectPacket(clientId, 'gw1', PASS, 60, { clean, level: protocolVersion }));
  const p = (await raw.next('connack')) as { returnCode?: number; sessionPresent?: boolean };
  const closed = await Promise.race([raw.closed.then(() => true), new Promise<boolean>((r) => setTimeout(() => r(false), 500))]);
  return { returnCode: p.returnCode, sessionPresent: p.sessionPresent, closed };
}

describe('CONNECT client identifier', () => {
  it('MQTT-3.1.3-8: an empty client id with CleanSession 0 gets CONNACK 0x02 (identifier rejected) and the connection is closed', async () => {
    const r = await connack('', false);
    expect(r.returnCode).toBe(2);
    expect(r.closed).toBe(true);
    expect(gateway.stats().connections).toBe(0);
  });

  it('MQTT-3.1.3-6: an empty client id with CleanSession 1 is accepted (the broker assigns an id)', async () => {
    const r = await connack('', true);
    expect(r.returnCode).toBe(0);
    expect(r.closed).toBe(false);
  });

  it('MQTT 3.1 (protocol level 3) allows no empty client id: CONNACK 0x02', async () => {
    const r = await connack('', true, 3);
    expect(r.returnCode).toBe(2);
  });

  it('a named client id with CleanSession 0 keeps its session', async () => {
    expect((await connack('edge-1', false)).returnCode).toBe(0);
  });
});
