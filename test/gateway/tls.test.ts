import { spawn } from 'node:child_process';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import type { MqttClient } from 'mqtt';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { CredentialStore } from '../../gateway/credentials.ts';
import { buildGateway, type Gateway, type GatewayTlsOptions } from '../../gateway/gateway.ts';
import { closed, collector, connectMqtt, makePki, type TestPki } from './helpers.ts';

/** TLS and mutual TLS on the gateway; certificates made at test time with openssl (no network). */

let pki: TestPki;
let gw1Cert: { cert: string; key: string };
let ghostCert: { cert: string; key: string };
let store: CredentialStore;
const gateways: Gateway[] = [];
const clients: MqttClient[] = [];

beforeAll(() => {
  pki = makePki();
  gw1Cert = pki.client('gw1');
  ghostCert = pki.client('ghost'); // a valid certificate for a name the store does not hold
});
afterAll(() => rmSync(pki.dir, { recursive: true, force: true }));

beforeEach(() => {
  store = CredentialStore.memory();
  store.create('gw1', 'gateway', 'gw1-password-0001');
  store.create('cloud', 'service', 'cloud-password-001');
});

afterEach(async () => {
  for (const c of clients.splice(0)) await c.endAsync(true).catch(() => undefined);
  for (const g of gateways.splice(0)) await g.stop();
});

async function start(clientCerts: GatewayTlsOptions['clientCerts']): Promise<{ g: Gateway; url: string }> {
  const g = buildGateway({ credentials: store, tls: { cert: pki.serverCert, key: pki.serverKey, ca: pki.ca, clientCerts, port: 0 } });
  gateways.push(g);
  await g.start();
  return { g, url: `mqtts://127.0.0.1:${g.tlsPort}` };
}

async function tlsConnect(url: string, opts: Record<string, unknown>): Promise<MqttClient> {
  const c = await connectMqtt(url, { ca: pki.ca, rejectUnauthorized: true, ...opts });
  clients.push(c);
  return c;
}

async function refusal(url: string, opts: Record<string, unknown>): Promise<string> {
  try {
    const c = await tlsConnect(url, opts);
    await c.endAsync(true);
  } catch (err) {
    const e = err as { code?: number | string; message: string };
    return typeof e.code === 'number' ? `connack ${e.code}` : e.message;
  }
  throw new Error('connection was accepted');
}

describe('gateway over TLS', () => {
  it('accepts a password over TLS and keeps refusing a wrong one', async () => {
    const { url } = await start('none');
    const c = await tlsConnect(url, { username: 'gw1', password: 'gw1-password-0001' });
    await c.publishAsync('cs/v1/gw1/health', '{}', { qos: 1 });
    expect(await refusal(url, { username: 'gw1', password: 'wrong-password-123' })).toBe('connack 5');
  });

  it('serves mosquitto_pub over TLS with the CA file', async () => {
    const { g, url } = await start('none');
    const sub = await tlsConnect(url, { username: 'cloud', password: 'cloud-password-001' });
    const got = collector(sub);
    await sub.subscribeAsync('cs/v1/#', { qos: 1 });
    const caFile = join(pki.dir, 'test-ca.crt');
    const code = await new Promise<number | null>((resolve) => {
      const p = spawn('mosquitto_pub', ['-V', 'mqttv311', '-h', '127.0.0.1', '-p', String(g.tlsPort), '--cafile', caFile,
        '-u', 'gw1', '-P', 'gw1-password-0001', '-t', 'cs/v1/gw1/up/d1', '-m', 'over-tls', '-q', '1'], { stdio: 'ignore' });
      p.once('close', resolve);
    });
    expect(code).toBe(0);
    await got.waitFor(1);
    expect(got.messages[0]).toEqual({ topic: 'cs/v1/gw1/up/d1', payload: 'over-tls' });
  });
});

describe('gateway with mutual TLS', () => {
  it('maps a client certificate to its identity: no password needed, and its namespace ACL applies', async () => {
    const { url } = await start('required');
    const gw1 = await tlsConnect(url, gw1Cert);
    await gw1.publishAsync('cs/v1/gw1/up/d1', '{}', { qos: 1 });
    const lost = closed(gw1);
    gw1.publish('cs/v1/gw2/up/d1', '{}', { qos: 1 }); // outside its namespace: connection closed
    await lost;
  });

  it('refuses a connection without a certificate, with one from another CA, or for an unknown name', async () => {
    const { url } = await start('required');
    expect(await refusal(url, { username: 'gw1', password: 'gw1-password-0001' })).not.toMatch(/^connack 0/);
    expect(await refusal(url, pki.rogue)).not.toMatch(/^connack 0/);
    expect(await refusal(url, ghostCert)).toBe('connack 5');
  });

  it('refuses a username that differs from the certificate subject', async () => {
    const { url } = await start('required');
    expect(await refusal(url, { ...gw1Cert, username: 'cloud', password: 'cloud-password-001' })).toBe('connack 5');
  });

  it('closes a certificate connection when its credential is revoked, and refuses it afterwards', async () => {
    const { url } = await start('required');
    const gw1 = await tlsConnect(url, gw1Cert);
    const lost = closed(gw1);
    store.revoke('gw1');
    await lost;
    expect(await refusal(url, gw1Cert)).toBe('connack 5');
  });

  it('with optional client certificates, takes either a certificate or a password', async () => {
    const { url } = await start('optional');
    await tlsConnect(url, gw1Cert);
    await tlsConnect(url, { username: 'cloud', password: 'cloud-password-001' });
    expect(await refusal(url, pki.rogue)).not.toMatch(/^connack 0/);
    expect(await refusal(url, {})).toBe('connack 4');
  });

  it('refuses to start with client certificates but no CA', async () => {
    const g = buildGateway({ credentials: store, tls: { cert: pki.serverCert, key: pki.serverKey, clientCerts: 'required' } });
    await expect(g.start()).rejects.toMatchObject({ code: 'CS_GW_TLS_CONFIG' });
  });
});
