import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadProfiles } from '../../devices/profile.ts';
import type { Bus, Device } from '../../devices/district.ts';
import { CredentialStore, openCredentialStore } from '../../gateway/credentials.ts';
import { buildGatewayService, type GatewayService } from '../../gateway/service.ts';
import { loadEdgeConfig } from '../../edge/config.ts';
import { brokerAdminCredentials, storeCredentials, type GatewayCredentials } from '../../cloud/provision/credentials.ts';
import { edgeConfigFor, edgeConfigYaml } from '../../cloud/provision/edge-config.ts';
import { connectMqtt } from '../gateway/helpers.ts';

/** Gateway credentials made through the brokers' admin API or a broker's store in the process, and the edge config file given with them. */

const ADMIN = 'admin-token-0123456789';
const silent = pino({ level: 'silent' });
const profiles = loadProfiles();

async function works(url: string, username: string, password: string): Promise<boolean> {
  try {
    const c = await connectMqtt(url, { username, password });
    await c.endAsync(true);
    return true;
  } catch {
    return false;
  }
}

async function errorOf(p: Promise<unknown>): Promise<{ code: string; message: string }> {
  try {
    await p;
  } catch (err) {
    return err as { code: string; message: string };
  }
  throw new Error('resolved');
}

describe('gateway credentials through the brokers\' admin API', () => {
  const dir = mkdtempSync(join(tmpdir(), 'cs-provision-'));
  let svc: GatewayService;
  let mqtt: string;
  let http: string;
  let dead: Server;
  let deadUrl: string;
  let creds: GatewayCredentials;

  beforeAll(async () => {
    openCredentialStore(dir).create('cloud', 'service', 'cloud-password-001');
    svc = buildGatewayService({
      settings: { mqtt: { host: '127.0.0.1', port: 0, maxPacketSizeBytes: 64 * 1024 }, limits: { drainTimeoutMs: 5000 }, http: { host: '127.0.0.1', port: 0 }, allowAnonymous: false },
      credentials: openCredentialStore(dir), logger: silent, adminToken: ADMIN,
    });
    const at = await svc.start();
    mqtt = at.mqtt;
    http = at.http!;
    // A broker that is down: its port accepts and closes at once.
    dead = createServer((s) => s.destroy());
    await new Promise<void>((r) => dead.listen(0, '127.0.0.1', () => r()));
    deadUrl = `http://127.0.0.1:${(dead.address() as { port: number }).port}`;
    creds = brokerAdminCredentials({ urls: [deadUrl, http], token: ADMIN, logger: silent, timeoutMs: 2000 });
  });

  afterAll(async () => {
    await svc.stop();
    await new Promise((r) => dead.close(r));
    rmSync(dir, { recursive: true, force: true });
  });

  it('creates a gateway credential that works on the broker at once, through the next broker when the first is down', async () => {
    const c = await creds.create('gw-p1');
    expect(c.username).toBe('gw-p1');
    expect(await works(mqtt, 'gw-p1', c.password)).toBe(true);
  });

  it('gives a gateway created again a new password; the old one stops working', async () => {
    const first = await creds.create('gw-p2');
    const second = await creds.create('gw-p2');
    expect(second.password).not.toBe(first.password);
    expect(await works(mqtt, 'gw-p2', first.password)).toBe(false);
    expect(await works(mqtt, 'gw-p2', second.password)).toBe(true);
  });

  it('revokes a retired gateway\'s credential and refuses its id afterwards; never touches an identity of another role', async () => {
    const c = await creds.create('gw-p3');
    await creds.revoke('gw-p3');
    await creds.revoke('gw-p3'); // idempotent
    await creds.revoke('gw-never'); // unknown: nothing to do
    expect(await works(mqtt, 'gw-p3', c.password)).toBe(false);
    const again = await errorOf(creds.create('gw-p3'));
    expect(again).toMatchObject({ code: 'CS_CLOUD_PROVISION_ID_USED', message: 'gateway id gw-p3 was used before and its broker credential revoked: choose another id' });
    const cloud = await errorOf(creds.create('cloud'));
    expect(cloud).toMatchObject({ code: 'CS_CLOUD_PROVISION_ID_USED', message: 'gateway id cloud is a broker identity of another role: choose another id' });
    expect(await works(mqtt, 'cloud', 'cloud-password-001')).toBe(true);
  });

  it('fails with PROVISION_FAILED naming each broker when none answers, or with a wrong token', async () => {
    const none = await errorOf(brokerAdminCredentials({ urls: [deadUrl], token: ADMIN, logger: silent }).create('gw-p4'));
    expect(none.code).toBe('CS_CLOUD_PROVISION_FAILED');
    expect(none.message).toContain(`no broker admin API answered POST /admin/credentials (${deadUrl}: `);
    const wrong = await errorOf(brokerAdminCredentials({ urls: [http], token: 'wrong-token-0123456789', logger: silent }).create('gw-p4'));
    expect(wrong.code).toBe('CS_CLOUD_PROVISION_FAILED');
    expect(wrong.message).toMatch(/^the broker refused to create a credential for gw-p4: 401 CS_GW_ADMIN_UNAUTHORIZED/);
  });
});

describe('gateway credentials in the process\'s own broker store (the demo)', () => {
  it('creates, renews and revokes like the admin API', async () => {
    const store = CredentialStore.memory();
    store.create('cloud', 'service', 'cloud-password-001');
    const creds = storeCredentials(store);
    const a = await creds.create('gw-s1');
    expect(await store.verify('gw-s1', a.password)).toMatchObject({ role: 'gateway', gateway: 'gw-s1' });
    const b = await creds.create('gw-s1');
    expect(await store.verify('gw-s1', a.password)).toBeUndefined();
    await creds.revoke('gw-s1');
    expect(await store.verify('gw-s1', b.password)).toBeUndefined();
    expect((await errorOf(creds.create('gw-s1'))).code).toBe('CS_CLOUD_PROVISION_ID_USED');
    expect((await errorOf(creds.create('cloud'))).code).toBe('CS_CLOUD_PROVISION_ID_USED');
  });
});

describe('the edge config file given with a new gateway', () => {
  const bus: Bus = { id: 'bus-9', gateway: 'gw-e1', host: '10.0.0.9', port: 502, timeoutMs: 800 };
  const device = { id: 'WL-9', profile: 'water-level', bus: 'bus-9', unitId: 4, pollMs: 2000 } as Device;

  it('is YAML the edge loads as it is: identity, credential, brokers, revision, buses and devices', () => {
    const { input } = edgeConfigFor({ gateway: { id: 'gw-e1' }, buses: [bus], devices: [device] }, { username: 'gw-e1', password: 'secret-password-1' },
      { mqtt: { url: 'mqtt://10.0.0.1:1883', urls: ['mqtt://10.0.0.2:1883'] }, pollMs: 5000 }, profiles, 42);
    const text = edgeConfigYaml(input, new Date('2026-11-30T10:00:00Z'));
    expect(text).toMatch(/^# Edge config of gateway gw-e1, written by the CitySteward cloud at 2026-11-30T10:00:00.000Z \(registry revision 42\)\./);
    const dir = mkdtempSync(join(tmpdir(), 'cs-edgecfg-'));
    try {
      writeFileSync(join(dir, 'edge.yaml'), text);
      const cfg = loadEdgeConfig(join(dir, 'edge.yaml'), profiles);
      expect(cfg).toMatchObject({
        gateway: 'gw-e1', revision: 42, pollMs: 5000,
        mqtt: { url: 'mqtt://10.0.0.1:1883', urls: ['mqtt://10.0.0.2:1883'], username: 'gw-e1', password: 'secret-password-1' },
        buses: [{ id: 'bus-9', type: 'tcp', host: '10.0.0.9', port: 502, timeoutMs: 800 }],
        devices: [{ id: 'WL-9', profile: 'water-level', bus: 'bus-9', unitId: 4, pollMs: 2000 }],
      });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('is valid for a gateway with no buses yet, and refused, key by key, for what the edge would refuse', () => {
    const empty = edgeConfigFor({ gateway: { id: 'gw-e2' }, buses: [], devices: [] }, { username: 'gw-e2', password: 'p' }, { mqtt: { url: 'mqtt://h:1883' } }, profiles, 1);
    expect(empty.config).toMatchObject({ buses: [], devices: [] });
    let err: { code?: string; message?: string } = {};
    try {
      edgeConfigFor({ gateway: { id: 'gw-e3' }, buses: [{ ...bus, port: 0 }], devices: [{ ...device, profile: 'nope' }] }, { username: 'gw-e3', password: 'p' }, { mqtt: { url: 'mqtt://h:1883' } }, profiles, 1);
    } catch (e) {
      err = e as typeof err;
    }
    expect(err.code).toBe('CS_CLOUD_EDGE_CONFIG_INVALID');
    expect(err.message).toContain('buses[0].port');
  });
});
