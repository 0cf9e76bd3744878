import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { MqttClient } from 'mqtt';
import pino from 'pino';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { openCredentialStore } from '../../gateway/credentials.ts';
import { buildGateway, type Gateway } from '../../gateway/gateway.ts';
import { buildGatewayService, type GatewayService } from '../../gateway/service.ts';
import { runCli, type Running } from '../helpers/process.ts';
import { connectMqtt, deleteKeys, REDIS_URL, redisAvailable, uniquePrefix } from './helpers.ts';

/**
 * Brokers sharing one credentials file (the cluster layout): a credential created or rotated through
 * one broker's admin API works on the other at once, not after a restart or the file watcher's reload.
 */

const ADMIN = 'admin-token-0123456789';
/** CONNACK 5: how the broker refuses a wrong username or password (it does not tell which). */
const NOT_AUTHORIZED = 5;
const silent = pino({ level: 'silent' });

async function refused(url: string, username: string, password: string): Promise<number | undefined> {
  try {
    const c = await connectMqtt(url, { username, password });
    await c.endAsync(true);
    return undefined;
  } catch (err) {
    return (err as { code?: number }).code ?? -1;
  }
}

async function admin(http: string, path: string, body?: object): Promise<{ status: number; json: Record<string, string> }> {
  const res = await fetch(`${http}${path}`, {
    method: 'POST', headers: { authorization: `Bearer ${ADMIN}`, ...(body ? { 'content-type': 'application/json' } : {}) },
    ...(body ? { body: JSON.stringify(body) } : {}),
  });
  return { status: res.status, json: await res.json() as Record<string, string> };
}

describe('two brokers in one process on one credentials file, the second not watching it', () => {
  let dir: string;
  let a: GatewayService;
  let b: Gateway;
  let http: string;
  let bUrl: string;
  const clients: MqttClient[] = [];

  beforeEach(async () => {
    dir = mkdtempSync(join(tmpdir(), 'cs-shared-cred-'));
    openCredentialStore(dir).create('cloud', 'service', 'cloud-password-001');
    a = buildGatewayService({
      settings: { mqtt: { host: '127.0.0.1', port: 0, maxPacketSizeBytes: 64 * 1024 }, limits: { drainTimeoutMs: 5000 }, http: { host: '127.0.0.1', port: 0 }, allowAnonymous: false },
      credentials: openCredentialStore(dir), logger: silent, adminToken: ADMIN,
    });
    http = (await a.start()).http!;
    // Without its watcher, only the look at the file during a login can tell this broker about changes.
    b = buildGateway({ credentials: openCredentialStore(dir), logger: silent, watchCredentials: false });
    bUrl = `mqtt://127.0.0.1:${(await b.start()).port}`;
  });

  afterEach(async () => {
    for (const c of clients.splice(0)) await c.endAsync(true).catch(() => undefined);
    await b.stop();
    await a.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('accepts on the second broker a gateway credential created through the first one\'s admin API a moment ago', async () => {
    const created = await admin(http, '/admin/credentials', { username: 'gw-new', role: 'gateway' });
    expect(created.status).toBe(201);
    const c = await connectMqtt(bUrl, { username: 'gw-new', password: created.json.password, clientId: 'edge' });
    clients.push(c);
    expect(c.connected).toBe(true);
  });

  it('accepts on the second broker the new password of a credential rotated on the first, and refuses the old one', async () => {
    const created = await admin(http, '/admin/credentials', { username: 'gw-rot', role: 'gateway' });
    const rotated = await admin(http, '/admin/credentials/gw-rot/rotate');
    expect(rotated.status).toBe(200);
    expect(await refused(bUrl, 'gw-rot', created.json.password)).toBe(NOT_AUTHORIZED);
    expect(await refused(bUrl, 'gw-rot', rotated.json.password)).toBeUndefined();
  });

  // Fault guarded: the second broker accepted a password it had verified before (its recall, no file look) after the
  // first broker revoked or rotated the credential, until its file watcher's reload: revoked gateways logged in again.
  it('refuses on the second broker, at the very next login, a password it accepted before and the first broker then revoked', async () => {
    const created = await admin(http, '/admin/credentials', { username: 'gw-rev', role: 'gateway' });
    expect(await refused(bUrl, 'gw-rev', created.json.password)).toBeUndefined();
    const res = await fetch(`${http}/admin/credentials/gw-rev`, { method: 'DELETE', headers: { authorization: `Bearer ${ADMIN}` } });
    expect(res.status).toBe(200);
    expect(await refused(bUrl, 'gw-rev', created.json.password)).toBe(NOT_AUTHORIZED);
  });

  it('refuses on the second broker, at the very next login, an old password it accepted before the first broker rotated it', async () => {
    const created = await admin(http, '/admin/credentials', { username: 'gw-rot2', role: 'gateway' });
    expect(await refused(bUrl, 'gw-rot2', created.json.password)).toBeUndefined();
    const rotated = await admin(http, '/admin/credentials/gw-rot2/rotate');
    expect(rotated.status).toBe(200);
    expect(await refused(bUrl, 'gw-rot2', created.json.password)).toBe(NOT_AUTHORIZED);
    expect(await refused(bUrl, 'gw-rot2', rotated.json.password)).toBeUndefined();
  });

  it('still refuses an unknown username on the second broker (bad username or password)', async () => {
    expect(await refused(bUrl, 'gw-nobody', 'x'.repeat(43))).toBe(NOT_AUTHORIZED);
  });
});

const withRedis = await redisAvailable();
if (!withRedis) console.warn(`[skip] shared credentials cluster test: no Redis at ${REDIS_URL}`);

describe.skipIf(!withRedis)('two `citysteward gateway` processes on one Redis and one data directory', () => {
  const prefix = uniquePrefix('shared-cred');
  const dir = mkdtempSync(join(tmpdir(), 'cs-shared-cluster-'));
  const brokers: { run: Running; mqtt: string; http: string }[] = [];

  beforeAll(async () => {
    openCredentialStore(dir).create('cloud', 'service', 'cloud-password-001');
    const config = join(dir, 'gateway.yaml');
    writeFileSync(config, `redis:\n  url: ${REDIS_URL}\n  keyPrefix: "${prefix}"\nhttp:\n  host: 127.0.0.1\n  port: 0\n`);
    for (let i = 0; i < 2; i++) {
      const run = runCli(['gateway', '--config', config, '--data-dir', dir, '--host', '127.0.0.1', '--mqtt-port', '0'], { CS_LOG_LEVEL: 'warn', CS_GATEWAY_ADMIN_TOKEN: ADMIN });
      const [, mqtt] = await run.waitFor(/gateway: MQTT listening on (mqtt:\/\/\S+)/);
      const [, http] = await run.waitFor(/gateway: HTTP on (http:\/\/\S+)/);
      brokers.push({ run, mqtt, http });
    }
  }, 60_000);

  afterAll(async () => {
    for (const b of brokers) await b.run.stop();
    await deleteKeys(prefix);
    rmSync(dir, { recursive: true, force: true });
  });

  it('lets a gateway created through broker 1 connect to broker 2 straight after the answer, several times over', async () => {
    const [one, two] = brokers;
    for (let i = 0; i < 5; i++) {
      const created = await admin(one.http, '/admin/credentials', { username: `gw-c${i}`, role: 'gateway' });
      expect(created.status).toBe(201);
      expect(await refused(two.mqtt, `gw-c${i}`, created.json.password)).toBeUndefined();
    }
  }, 60_000);
});
