import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { connect as netConnect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import mqtt, { type IClientOptions, type MqttClient } from 'mqtt';
import pino from 'pino';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { CredentialStore, openCredentialStore, type Identity } from '../../gateway/credentials.ts';
import { buildGateway, type Gateway, type GatewayOptions } from '../../gateway/gateway.ts';

const PASS = { gw1: 'gw1-password-0001', gw2: 'gw2-password-0002', cloud: 'cloud-password-001' };

let store: CredentialStore;
let gateway: Gateway;
let port: number;
const clients: MqttClient[] = [];
const children: ChildProcess[] = [];
const sockets: Socket[] = [];
const gateways: Gateway[] = [];
const dirs: string[] = [];

async function startGateway(opts: Partial<GatewayOptions> = {}): Promise<Gateway> {
  const g = buildGateway({ credentials: store, ...opts });
  gateways.push(g);
  await g.start();
  return g;
}

beforeEach(async () => {
  store = CredentialStore.memory();
  store.create('gw1', 'gateway', PASS.gw1);
  store.create('gw2', 'gateway', PASS.gw2);
  store.create('cloud', 'service', PASS.cloud);
  gateway = await startGateway();
  port = gateway.port;
});

afterEach(async () => {
  for (const c of clients.splice(0)) await c.endAsync(true).catch(() => undefined);
  for (const s of sockets.splice(0)) s.destroy();
  for (const child of children.splice(0)) {
    if (child.exitCode === null && child.signalCode === null) {
      const exited = new Promise((r) => child.once('exit', r));
      child.kill();
      await exited;
    }
  }
  for (const g of gateways.splice(0)) await g.stop();
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

// ---- mqtt.js helpers ---------------------------------------------------------------------

function options(username?: string, password?: string, extra: IClientOptions = {}): IClientOptions {
  return {
    host: '127.0.0.1', port, protocolVersion: 4, reconnectPeriod: 0, connectTimeout: 10_000,
    ...(username !== undefined ? { username } : {}), ...(password !== undefined ? { password } : {}), ...extra,
  };
}

/** Connects; resolves the client once CONNACK 0 arrives. */
function connect(username?: string, password?: string, extra?: IClientOptions): Promise<MqttClient> {
  const client = mqtt.connect(options(username, password, extra));
  clients.push(client);
  return new Promise((resolve, reject) => {
    client.once('connect', () => resolve(client));
    client.once('error', reject);
  });
}

/** Connects expecting a refusal; resolves the CONNACK return code. */
async function refusedWith(username?: string, password?: string, extra?: IClientOptions): Promise<number> {
  try {
    await connect(username, password, extra);
  } catch (err) {
    return (err as { code: number }).code;
  }
  throw new Error('connection was accepted');
}

/** The SUBACK return code of one filter: its granted QoS, or 0x80 when refused. */
async function suback(client: MqttClient, filter: string): Promise<number> {
  try {
    const granted = await client.subscribeAsync(filter, { qos: 1 });
    return granted[0].qos;
  } catch (err) {
    const packet = (err as { packet?: { granted?: number[] } }).packet;
    if (!packet?.granted) throw err;
    return packet.granted[0];
  }
}

function closed(client: MqttClient): Promise<void> {
  return new Promise((resolve) => (client.connected ? client.once('close', () => resolve()) : resolve()));
}

/** A cloud subscriber on cs/v1/#, collecting every message it receives. */
async function cloudSubscriber(filter = 'cs/v1/#'): Promise<{ client: MqttClient; received: { topic: string; payload: string }[]; next: (topic: string) => Promise<string> }> {
  const client = await connect('cloud', PASS.cloud);
  const received: { topic: string; payload: string }[] = [];
  const waiters: { topic: string; resolve: (p: string) => void }[] = [];
  client.on('message', (topic, payload) => {
    received.push({ topic, payload: payload.toString() });
    for (const w of waiters.filter((w) => w.topic === topic)) {
      waiters.splice(waiters.indexOf(w), 1);
      w.resolve(payload.toString());
    }
  });
  await client.subscribeAsync(filter, { qos: 1 });
  return {
    client,
    received,
    next: (topic) => new Promise((resolve) => waiters.push({ topic, resolve })),
  };
}

// ---- mosquitto helpers -------------------------------------------------------------------

interface Run { code: number | null; stdout: string; stderr: string }

function mosquitto(cmd: 'mosquitto_pub' | 'mosquitto_sub', args: string[]): { child: ChildProcess; done: Promise<Run>; output: () => string } {
  // stdbuf: mosquitto_sub block-buffers stdout into a pipe; we read its SUBACK line live.
  const child = spawn('stdbuf', ['-oL', cmd, '-V', 'mqttv311', '-h', '127.0.0.1', '-p', String(port), ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  children.push(child);
  let stdout = '';
  let stderr = '';
  child.stdout!.setEncoding('utf8').on('data', (d: string) => { stdout += d; });
  child.stderr!.setEncoding('utf8').on('data', (d: string) => { stderr += d; });
  const done = new Promise<Run>((resolve) => child.once('close', (code) => resolve({ code, stdout, stderr })));
  return { child, done, output: () => stdout };
}

/** Starts mosquitto_sub and resolves once its SUBACK has been printed (`-d`). */
async function mosquittoSub(args: string[]): Promise<{ done: Promise<Run>; suback: string }> {
  const run = mosquitto('mosquitto_sub', ['-d', ...args]);
  const suback = await new Promise<string>((resolve, reject) => {
    run.child.stdout!.on('data', () => {
      const m = /Subscribed \(mid: \d+\): ([\d, ]+)/.exec(run.output());
      if (m) resolve(m[1].trim());
    });
    run.done.then((r) => reject(new Error(`mosquitto_sub exited early: ${r.stdout} ${r.stderr}`)));
  });
  return { done: run.done, suback };
}

// ---- tests with mqtt.js ------------------------------------------------------------------

describe('gateway with mqtt.js clients', () => {
  it('accepts a good credential and routes a gateway reading to the cloud subscriber', async () => {
    const cloud = await cloudSubscriber();
    const gw1 = await connect('gw1', PASS.gw1);
    const got = cloud.next('cs/v1/gw1/up/lvl-01');
    await gw1.publishAsync('cs/v1/gw1/up/lvl-01', '{"seq":1}', { qos: 1 });
    expect(await got).toBe('{"seq":1}');
  });

  it('refuses a wrong password, an unknown username and a revoked credential with CONNACK 5', async () => {
    expect(await refusedWith('gw1', 'wrong-password-123')).toBe(5);
    expect(await refusedWith('gw1', PASS.gw2)).toBe(5);
    expect(await refusedWith('nobody', PASS.gw1)).toBe(5);
    store.revoke('gw2');
    expect(await refusedWith('gw2', PASS.gw2)).toBe(5);
  });

  it('logs every refusal with username and remote address, and never a password', async () => {
    const lines: string[] = [];
    const sink = new Writable({ write(chunk, _enc, cb) { lines.push(String(chunk)); cb(); } });
    const g = await startGateway({ logger: pino({ level: 'debug' }, sink) });
    expect(await refusedWith('gw1', 'wrong-password-123', { port: g.port })).toBe(5);
    expect(await refusedWith(undefined, undefined, { port: g.port })).toBe(4);
    const ok = await connect('gw2', PASS.gw2, { port: g.port });
    await ok.publishAsync('cs/v1/gw2/health', '{}', { qos: 1 });
    const refusals = lines.map((l) => JSON.parse(l)).filter((l) => l.msg === 'mqtt connection refused');
    expect(refusals).toHaveLength(2);
    expect(refusals[0]).toMatchObject({ username: 'gw1', code: 'CS_GW_AUTH_FAILED', returnCode: 5 });
    expect(refusals[0].remote).toMatch(/^127\.0\.0\.1:\d+$/);
    expect(refusals[1]).toMatchObject({ username: null, code: 'CS_GW_AUTH_MISSING', returnCode: 4 });
    const all = lines.join('');
    expect(all).not.toContain('wrong-password-123');
    expect(all).not.toContain(PASS.gw2);
  });

  it('refuses a CONNECT without username or password with CONNACK 4', async () => {
    expect(await refusedWith()).toBe(4);
    expect(await refusedWith('gw1')).toBe(4);
    expect(await refusedWith('gw1', '')).toBe(4);
  });

  it('closes a gateway publishing under another gateway namespace, and the cloud never receives it', async () => {
    const cloud = await cloudSubscriber();
    const intruder = await connect('gw1', PASS.gw1);
    const lost = closed(intruder);
    intruder.publish('cs/v1/gw2/up/lvl-01', '{"forged":true}', { qos: 1 });
    await lost;
    // A legitimate message sent after the refusal arrives; the forged one never came before it.
    const gw2 = await connect('gw2', PASS.gw2);
    const sentinel = cloud.next('cs/v1/gw2/up/lvl-01');
    await gw2.publishAsync('cs/v1/gw2/up/lvl-01', '{"real":true}', { qos: 1 });
    expect(await sentinel).toBe('{"real":true}');
    expect(cloud.received).toEqual([{ topic: 'cs/v1/gw2/up/lvl-01', payload: '{"real":true}' }]);
  });

  it('closes a gateway publishing to its own command topic or a $SYS topic', async () => {
    for (const topic of ['cs/v1/gw1/cmd', '$SYS/broker/fake', 'cs/v1/events/case-opened']) {
      const gw1 = await connect('gw1', PASS.gw1);
      const lost = closed(gw1);
      gw1.publish(topic, 'x', { qos: 1 });
      await lost;
    }
    expect(gateway.stats().denied).toBe(3);
  });

  it('refuses a gateway subscription outside its namespace or to # with 0x80 in the SUBACK, keeping the connection', async () => {
    const gw1 = await connect('gw1', PASS.gw1);
    for (const filter of ['#', 'cs/v1/#', 'cs/v1/gw2/cmd', 'cs/v1/+/cmd', 'cs/v1/gw1/#', '$SYS/#']) {
      expect(await suback(gw1, filter), filter).toBe(0x80);
    }
    expect(await suback(gw1, 'cs/v1/gw1/cmd')).toBe(1);
    expect(gw1.connected).toBe(true);
  });

  it('refuses a service subscription to # but grants cs/v1/#', async () => {
    const cloud = await connect('cloud', PASS.cloud);
    expect(await suback(cloud, '#')).toBe(0x80);
    expect(await suback(cloud, 'cs/v1/#')).toBe(1);
  });

  it('delivers a command only to the gateway it is addressed to', async () => {
    const gw1 = await connect('gw1', PASS.gw1);
    const gw2 = await connect('gw2', PASS.gw2);
    const got1: string[] = [];
    gw1.on('message', (topic) => got1.push(topic));
    await gw1.subscribeAsync('cs/v1/gw1/cmd', { qos: 1 });
    await gw2.subscribeAsync('cs/v1/gw2/cmd', { qos: 1 });
    const cmd2 = new Promise<string>((resolve) => gw2.once('message', (topic, p) => resolve(`${topic} ${p}`)));
    const cloud = await connect('cloud', PASS.cloud);
    await cloud.publishAsync('cs/v1/gw2/cmd', '{"id":"c2"}', { qos: 1 });
    expect(await cmd2).toBe('cs/v1/gw2/cmd {"id":"c2"}');
    const cmd1 = new Promise<string>((resolve) => gw1.once('message', (topic, p) => resolve(`${topic} ${p}`)));
    await cloud.publishAsync('cs/v1/gw1/cmd', '{"id":"c1"}', { qos: 1 });
    expect(await cmd1).toBe('cs/v1/gw1/cmd {"id":"c1"}');
    expect(got1).toEqual(['cs/v1/gw1/cmd']);
  });

  it('refuses a Will outside the namespace with CONNACK 5', async () => {
    expect(await refusedWith('gw1', PASS.gw1, { will: { topic: 'cs/v1/gw2/state', payload: Buffer.from('offline'), qos: 1, retain: true } })).toBe(5);
    expect(await refusedWith('gw1', PASS.gw1, { will: { topic: 'cs/v1/gw1/cmd', payload: Buffer.from('x'), qos: 0, retain: false } })).toBe(5);
    expect(gateway.stats().denied).toBe(2);
  });

  it('publishes a Will inside the namespace when the gateway dies', async () => {
    const cloud = await cloudSubscriber();
    const gw1 = await connect('gw1', PASS.gw1, { will: { topic: 'cs/v1/gw1/state', payload: Buffer.from('{"online":false}'), qos: 1, retain: true } });
    const will = cloud.next('cs/v1/gw1/state');
    (gw1.stream as Socket).destroy(); // no DISCONNECT: the broker must publish the Will
    expect(await will).toBe('{"online":false}');
  });

  it('closes the live connection of a revoked credential and refuses it afterwards', async () => {
    const gw1 = await connect('gw1', PASS.gw1);
    const gw2 = await connect('gw2', PASS.gw2);
    const lost = closed(gw1);
    store.revoke('gw1');
    await lost;
    expect(await refusedWith('gw1', PASS.gw1)).toBe(5);
    await gw2.publishAsync('cs/v1/gw2/health', '{}', { qos: 1 }); // others keep running
    expect(gateway.stats().connections).toBe(1);
  });

  it('closes a live connection when another process revokes the credential in the file', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'cs-gw-'));
    dirs.push(dir);
    const fileStore = openCredentialStore(dir);
    fileStore.create('gw9', 'gateway', 'gw9-password-0009');
    const g = await startGateway({ credentials: fileStore });
    const gw9 = await connect('gw9', 'gw9-password-0009', { port: g.port });
    const lost = closed(gw9);
    openCredentialStore(dir).revoke('gw9'); // as the CLI would, from another process
    await lost;
    expect(await refusedWith('gw9', 'gw9-password-0009', { port: g.port })).toBe(5);
  });

  it('keeps a gateway connected when another identity connects with the same client id', async () => {
    const gw1 = await connect('gw1', PASS.gw1, { clientId: 'shared-id', clean: false });
    await gw1.subscribeAsync('cs/v1/gw1/cmd', { qos: 1 });
    const gw2 = await connect('gw2', PASS.gw2, { clientId: 'shared-id', clean: true });
    expect(gw2.connected).toBe(true);
    await gw1.publishAsync('cs/v1/gw1/health', '{}', { qos: 1 });
    expect(gw1.connected).toBe(true);
    // gw1's session was not wiped by gw2's clean start: its subscription still delivers.
    const cmd = new Promise<string>((resolve) => gw1.once('message', (t) => resolve(t)));
    const cloud = await connect('cloud', PASS.cloud);
    await cloud.publishAsync('cs/v1/gw1/cmd', '{}', { qos: 1 });
    expect(await cmd).toBe('cs/v1/gw1/cmd');
  });

  it('closes a connection that sends a packet larger than maxPacketSize, and the cloud never receives it', async () => {
    const g = await startGateway({ maxPacketSize: 64 * 1024 });
    const cloudClient = await connect('cloud', PASS.cloud, { port: g.port });
    const received: string[] = [];
    cloudClient.on('message', (topic, payload) => received.push(`${topic} ${payload.length}`));
    await cloudClient.subscribeAsync('cs/v1/#', { qos: 1 });
    const gw1 = await connect('gw1', PASS.gw1, { port: g.port });
    const lost = closed(gw1);
    gw1.publish('cs/v1/gw1/up/big', Buffer.alloc(65 * 1024, 1), { qos: 1 });
    await lost;
    const gw2 = await connect('gw2', PASS.gw2, { port: g.port });
    const sentinel = new Promise((resolve) => cloudClient.once('message', resolve));
    await gw2.publishAsync('cs/v1/gw2/up/small', Buffer.alloc(60 * 1024, 1), { qos: 1 });
    await sentinel;
    expect(received).toEqual([`cs/v1/gw2/up/small ${60 * 1024}`]);
  });

  it('runs onPublishAuthorized before acknowledging, and refuses the message when it fails', async () => {
    const seen: string[] = [];
    const g = await startGateway({
      onPublishAuthorized: async (identity: Identity, topic: string, payload: Buffer) => {
        seen.push(`${identity.username} ${topic} ${payload}`);
        if (payload.toString() === 'fail') throw new Error('database unavailable');
      },
    });
    const gw1 = await connect('gw1', PASS.gw1, { port: g.port });
    await gw1.publishAsync('cs/v1/gw1/up/lvl-01', 'ok', { qos: 1 });
    expect(seen).toEqual(['gw1 cs/v1/gw1/up/lvl-01 ok']); // stored before the PUBACK came back
    const lost = closed(gw1);
    gw1.publish('cs/v1/gw1/up/lvl-01', 'fail', { qos: 1 });
    await lost;
    expect(seen).toEqual(['gw1 cs/v1/gw1/up/lvl-01 ok', 'gw1 cs/v1/gw1/up/lvl-01 fail']);
  });

  it('counts connections, authentication failures, denials and messages', async () => {
    await refusedWith('gw1', 'wrong-password-123');
    await refusedWith();
    const gw1 = await connect('gw1', PASS.gw1);
    await gw1.subscribeAsync('#').catch(() => undefined);
    await gw1.publishAsync('cs/v1/gw1/health', '{}', { qos: 1 });
    expect(gateway.stats()).toEqual({ connections: 1, authFailures: 2, denied: 1, messages: 1, dropped: 0 });
  });

  it('keeps no copy of a connected client password and counts it out when it leaves (regression: the close listener held the CONNECT attempt)', async () => {
    const gw1 = await connect('gw1', PASS.gw1, { clientId: 'idle-1' });
    const client = Object.values((gateway.broker as unknown as { clients: Record<string, { _parser: { settings: { password?: unknown; username?: string } } }> }).clients)[0]!;
    expect(client._parser.settings.username).toBe('gw1');
    expect(client._parser.settings.password).toBeUndefined();
    expect(gateway.stats().connections).toBe(1);
    await gw1.endAsync();
    for (let i = 0; i < 100 && gateway.stats().connections > 0; i++) await new Promise((r) => setTimeout(r, 20));
    expect(gateway.stats().connections).toBe(0);
  });

  it('builds no mqtt-packet number cache for the broker (regression: 65,536 Buffers, 6.5 MiB, after the first client)', async () => {
    const gw1 = await connect('gw1', PASS.gw1);
    const commands = await connect('cloud', PASS.cloud);
    await gw1.subscribeAsync('cs/v1/gw1/cmd', { qos: 1 });
    const got = new Promise<string>((resolve) => gw1.once('message', (_t, p) => resolve(p.toString())));
    await commands.publishAsync('cs/v1/gw1/cmd', 'open', { qos: 1 });
    expect(await got).toBe('open'); // a QoS 1 delivery with a packet id written without the cache
    const fromAedes = createRequire(import.meta.resolve('aedes'));
    expect(Object.keys((fromAedes('mqtt-packet/numbers.js') as { cache: object }).cache)).toHaveLength(0);
  });

  it('closes every client socket on stop, authenticated or not', async () => {
    const g = await startGateway();
    const gw1 = await connect('gw1', PASS.gw1, { port: g.port });
    const raw = netConnect(g.port, '127.0.0.1'); // never sends CONNECT
    sockets.push(raw);
    await new Promise((r) => raw.once('connect', r));
    const rawClosed = new Promise((r) => raw.once('close', r));
    const lost = closed(gw1);
    await g.stop();
    await lost;
    await rawClosed;
    await g.stop(); // idempotent
  });

  it('fails to start on a port already taken, with the errno code, and leaves nothing open', async () => {
    const g = buildGateway({ credentials: store, port });
    await expect(g.start()).rejects.toMatchObject({ code: 'EADDRINUSE' });
    await g.stop();
  });
});

// ---- tests with Debian's mosquitto clients -----------------------------------------------

describe('gateway with mosquitto_pub and mosquitto_sub', () => {
  it('carries a reading from mosquitto_pub as a gateway to mosquitto_sub as the cloud', async () => {
    const sub = await mosquittoSub(['-u', 'cloud', '-P', PASS.cloud, '-t', 'cs/v1/#', '-q', '1', '-v', '-C', '1']);
    expect(sub.suback).toBe('1');
    const pub = await mosquitto('mosquitto_pub', ['-u', 'gw1', '-P', PASS.gw1, '-t', 'cs/v1/gw1/up/lvl-01', '-m', '{"seq":7}', '-q', '1']).done;
    expect(pub.code).toBe(0);
    const out = await sub.done;
    expect(out.code).toBe(0);
    expect(out.stdout).toContain('cs/v1/gw1/up/lvl-01 {"seq":7}');
  });

  it('refuses mosquitto_pub with a wrong password, an unknown user or no credentials', async () => {
    const wrong = await mosquitto('mosquitto_pub', ['-u', 'gw1', '-P', 'wrong-password-123', '-t', 'cs/v1/gw1/state', '-m', 'x']).done;
    expect(wrong.code).not.toBe(0);
    expect(wrong.stderr).toContain('Connection Refused: not authorised');
    const unknown = await mosquitto('mosquitto_pub', ['-u', 'nobody', '-P', PASS.gw1, '-t', 'cs/v1/gw1/state', '-m', 'x']).done;
    expect(unknown.stderr).toContain('Connection Refused: not authorised');
    const none = await mosquitto('mosquitto_pub', ['-t', 'cs/v1/gw1/state', '-m', 'x']).done;
    expect(none.code).not.toBe(0);
    expect(none.stderr).toContain('Connection Refused: bad user name or password');
    expect(gateway.stats().authFailures).toBe(3);
  });

  it('drops mosquitto_pub publishing under another namespace, and mosquitto_sub never receives it', async () => {
    const sub = await mosquittoSub(['-u', 'cloud', '-P', PASS.cloud, '-t', 'cs/v1/#', '-q', '1', '-v', '-C', '1']);
    const forged = await mosquitto('mosquitto_pub', ['-u', 'gw1', '-P', PASS.gw1, '-t', 'cs/v1/gw2/up/lvl-01', '-m', 'forged', '-q', '1']).done;
    expect(forged.code).not.toBe(0);
    expect(forged.stderr).toContain('connection was lost');
    await mosquitto('mosquitto_pub', ['-u', 'gw2', '-P', PASS.gw2, '-t', 'cs/v1/gw2/up/lvl-01', '-m', 'real', '-q', '1']).done;
    const out = await sub.done; // -C 1: exits after the first message it receives
    expect(out.stdout).toContain('cs/v1/gw2/up/lvl-01 real');
    expect(out.stdout).not.toContain('forged');
  });

  it('answers mosquitto_sub on # or another namespace with 0x80 and grants its own command topic', async () => {
    const sub = await mosquittoSub(['-u', 'gw1', '-P', PASS.gw1, '-t', '#', '-t', 'cs/v1/gw2/cmd', '-t', 'cs/v1/gw1/cmd', '-q', '1']);
    expect(sub.suback).toBe('128, 128, 1');
    const denied = await mosquitto('mosquitto_sub', ['-u', 'gw1', '-P', PASS.gw1, '-t', '#']).done;
    expect(denied.stderr).toContain('All subscription requests were denied');
  });

  it('refuses mosquitto_pub whose Will lies outside its namespace', async () => {
    const run = await mosquitto('mosquitto_pub', ['-u', 'gw1', '-P', PASS.gw1, '-t', 'cs/v1/gw1/state', '-m', 'online',
      '--will-topic', 'cs/v1/gw2/state', '--will-payload', 'offline', '--will-retain']).done;
    expect(run.code).not.toBe(0);
    expect(run.stderr).toContain('Connection Refused: not authorised');
  });
});
