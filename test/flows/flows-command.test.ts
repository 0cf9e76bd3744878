import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import mqtt from 'mqtt';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildCloud, type Cloud } from '../../cloud/app.ts';
import { openDatabase } from '../../cloud/db/database.ts';
import { createUserStore } from '../../cloud/users.ts';
import { openCredentialStore } from '../../gateway/credentials.ts';
import { buildGatewayService, type GatewayService } from '../../gateway/service.ts';
import { topics } from '../../lib/topics.ts';
import { district, profiles, reading, ROOT } from '../cloud/fixtures.ts';
import { runCli, type Running } from '../helpers/process.ts';

/**
 * `citysteward flows` as its users start it: a child process on the data directory of a broker and a
 * cloud (started here, in-process), the broker reading the credentials file flows provisions into.
 */

let dir: string;
let flows: Running | undefined;
let base: string;
let broker: GatewayService;
let cloud: Cloud;
let receiver: Server;
let receiverUrl: string;
const received: string[] = [];
let gwPassword: string;
const logger = pino({ level: 'silent' });

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'cs-flows-'));
  const store = openCredentialStore(dir);
  const passwords = { cloud: store.create('cloud', 'service').password, gw: store.create('gw-xz-jida', 'gateway').password };
  broker = buildGatewayService({ settings: { mqtt: { host: '127.0.0.1', port: 0, maxPacketSizeBytes: 65536 }, limits: { drainTimeoutMs: 1000 }, allowAnonymous: false }, credentials: store, logger });
  const mqttUrl = (await broker.start()).mqtt;
  cloud = await buildCloud({ db: { kind: 'sqlite', file: join(dir, 'citysteward.db') }, district, profiles, mqtt: { url: mqttUrl, username: 'cloud', password: passwords.cloud }, escalation: false, logger });
  await cloud.start();
  const cloudPort = new URL(await cloud.app.listen({ host: '127.0.0.1', port: 0 })).port;
  const database = openDatabase({ kind: 'sqlite', file: join(dir, 'citysteward.db') });
  const users = createUserStore(database, Date.now, { params: { N: 1024, r: 8, p: 1 } });
  await users.create('ada', 'admin', undefined, 'ada-password-1');
  await users.create('otto', 'operator', undefined, 'otto-password-1');
  await users.create('bea', 'admin', undefined, 'bea-password-01');
  await database.close();
  gwPassword = passwords.gw;
  receiver = createServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => { body += c.toString(); });
    req.on('end', () => { received.push(body); res.end('{}'); });
  });
  await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', resolve));
  receiverUrl = `http://127.0.0.1:${(receiver.address() as { port: number }).port}/`;
  writeFileSync(join(dir, 'cloud.yaml'), `district: ${join(ROOT, 'devices/district/xiangzhou.yaml')}\nhttp: { port: ${cloudPort} }\nmqtt: { url: "${mqttUrl}", username: cloud, password: unused-here }\n`);
  flows = runCli(['flows', '--config', join(dir, 'cloud.yaml'), '--data-dir', dir, '--port', '0']);
  base = (await flows.waitFor(/Node-RED editor on (http:\/\/\S+\/)/, 60_000))[1];
}, 90_000);

afterAll(async () => {
  await flows?.stop();
  await cloud?.stop();
  await broker?.stop();
  await new Promise<void>((resolve) => (receiver ? receiver.close(() => resolve()) : resolve()));
  rmSync(dir, { recursive: true, force: true });
});

async function signIn(username: string, password: string): Promise<Response> {
  return fetch(`${base}auth/token`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ client_id: 'node-red-editor', grant_type: 'password', scope: '*', username, password }),
  });
}

describe('citysteward flows', () => {
  it('keeps the editor\'s API behind sign-in, for cloud admins only', async () => {
    expect((await fetch(`${base}auth/login`).then((r) => r.json()) as { type?: string }).type).toBe('credentials');
    for (const path of ['flows', 'nodes', 'settings']) expect((await fetch(`${base}${path}`)).status, path).toBe(401);
    expect((await signIn('ada', 'wrong-password')).status).toBe(403);
    expect((await signIn('otto', 'otto-password-1')).status).toBe(403);
    expect((await signIn('nobody', 'ada-password-1')).status).toBe(403);
  });

  it('refuses a username for 10 minutes after 5 failed sign-ins, even with the right password (Node-RED\'s own limit)', async () => {
    const codes = [];
    for (let i = 0; i < 5; i++) codes.push((await signIn('bea', 'wrong-password')).status);
    expect(codes).toEqual([403, 403, 403, 403, 403]);
    expect((await signIn('bea', 'bea-password-01')).status).not.toBe(200);
    expect((await signIn('ada', 'ada-password-1')).status).toBe(200);
  });

  it('registers the CitySteward nodes and turns palette installs and telemetry off', async () => {
    const res = await signIn('ada', 'ada-password-1');
    expect(res.status).toBe(200);
    const { access_token: token } = await res.json() as { access_token: string };
    const auth = { authorization: `Bearer ${token}`, accept: 'application/json' };
    const nodes = await fetch(`${base}nodes`, { headers: auth }).then((r) => r.json()) as { types: string[]; enabled: boolean }[];
    const types = nodes.flatMap((n) => n.types);
    for (const t of ['citysteward-server', 'citysteward-events', 'citysteward-readings', 'citysteward-case', 'citysteward-command']) expect(types).toContain(t);
    const settings = await fetch(`${base}settings`, { headers: auth }).then((r) => r.json()) as Record<string, unknown>;
    expect(settings).toMatchObject({ externalModules: { palette: { allowInstall: false, allowUpload: false } } });
    expect(JSON.stringify(settings)).not.toMatch(/cst_|citysteward":/);
  });

  it('runs a deployed flow on the provisioned credentials: a server node with empty fields hears the cloud\'s events and reads its cases', async () => {
    const { access_token: token } = await (await signIn('ada', 'ada-password-1')).json() as { access_token: string };
    const flow = [
      { id: 't1', type: 'tab', label: 'test' },
      { id: 'srv', type: 'citysteward-server', name: '' },
      { id: 'ev', z: 't1', type: 'citysteward-events', server: 'srv', types: 'case.opened', wires: [['read']] },
      { id: 'read', z: 't1', type: 'citysteward-case', server: 'srv', op: 'get', wires: [['post']] },
      { id: 'post', z: 't1', type: 'http request', method: 'POST', ret: 'txt', url: receiverUrl, wires: [[]] },
    ];
    // The events node subscribes once the broker has read the identity flows provisioned into its file.
    const subscribed = new Promise<void>((resolve) => {
      broker.gateway.broker.on('subscribe', (subs) => { if (subs.some((x) => x.topic === 'cs/v1/events/case/opened')) resolve(); });
    });
    const res = await fetch(`${base}flows`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json', 'node-red-deployment-type': 'full' },
      body: JSON.stringify(flow),
    });
    expect(res.status).toBe(204);
    await subscribed;
    const gw = await mqtt.connectAsync(`mqtt://127.0.0.1:${broker.gateway.port}`, { protocolVersion: 4, username: 'gw-xz-jida', password: gwPassword, reconnectPeriod: 0 });
    try {
      await gw.publishAsync(topics.up('gw-xz-jida', 'XZ-WL-001'), reading('XZ-WL-001', 1, Date.now(), { level_m: 0.92 }), { qos: 1 });
      for (let i = 0; i < 500 && !received.length; i++) await new Promise((r) => setTimeout(r, 20));
    } finally {
      await gw.endAsync();
    }
    expect(received, flows!.output().slice(-3000)).toHaveLength(1);
    expect(JSON.parse(received[0])).toMatchObject({ id: expect.stringMatching(/^C-/), device: 'XZ-WL-001', unit: 'xz-drainage' });
  });

  it('provisions an integrator API token and a read-only MQTT identity, keeping no secret on disk', async () => {
    const creds = JSON.parse(readFileSync(join(dir, 'credentials.json'), 'utf8')) as { users: { username: string; role: string }[] };
    expect(creds.users).toContainEqual(expect.objectContaining({ username: 'nodered', role: 'integrator' }));
    const record = JSON.parse(readFileSync(join(dir, 'node-red', 'citysteward-provisioned.json'), 'utf8')) as Record<string, string>;
    expect(record).toEqual({ tokenId: expect.stringMatching(/^tok_/), mqttUsername: 'nodered' });
    expect(statSync(join(dir, 'node-red', 'credential-secret')).mode & 0o077).toBe(0);
    const database = openDatabase({ kind: 'sqlite', file: join(dir, 'citysteward.db') });
    try {
      const row = await database.db.selectFrom('api_tokens').select(['role', 'revoked_at']).where('id', '=', record.tokenId).executeTakeFirst();
      expect(row).toEqual({ role: 'integrator', revoked_at: null });
    } finally {
      await database.close();
    }
  });

  it('stops on SIGTERM with exit code 0 and revokes its API token', async () => {
    const record = JSON.parse(readFileSync(join(dir, 'node-red', 'citysteward-provisioned.json'), 'utf8')) as Record<string, string>;
    flows!.child.kill('SIGTERM');
    const code = await Promise.race([flows!.exited, new Promise((r) => setTimeout(() => r('still running'), 15_000))]);
    expect(code, flows!.output().slice(-1500)).toBe(0);
    const database = openDatabase({ kind: 'sqlite', file: join(dir, 'citysteward.db') });
    try {
      const row = await database.db.selectFrom('api_tokens').select(['revoked_at']).where('id', '=', record.tokenId).executeTakeFirst();
      expect(row?.revoked_at).not.toBeNull();
    } finally {
      await database.close();
    }
  });
});
