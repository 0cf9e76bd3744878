/** Shared helpers of the gateway tests: Redis availability, key cleanup, MQTT clients, test certificates. */
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { connect as netConnect } from 'node:net';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import mqtt, { type IClientOptions, type MqttClient } from 'mqtt';
import mqttPacket, { type Packet } from 'mqtt-packet';

export const REDIS_URL = process.env.CS_TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';

export async function redisAvailable(): Promise<boolean> {
  const r = new Redis(REDIS_URL, { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null, connectTimeout: 1000 });
  r.on('error', () => undefined);
  try {
    await r.connect();
    await r.ping();
    return true;
  } catch (err) {
    // CI (.ci/run) starts Redis and sets CS_REQUIRE_SERVICES=1: the Redis suites fail instead of skipping.
    if (process.env.CS_REQUIRE_SERVICES === '1') throw new Error(`Redis required (CS_REQUIRE_SERVICES=1) but not reachable at ${REDIS_URL}: ${(err as Error).message}`);
    return false;
  } finally {
    r.disconnect();
  }
}

/** A key prefix of its own for one test run. */
export function uniquePrefix(label: string): string {
  return `cs-test-${label}-${randomBytes(4).toString('hex')}:`;
}

/** Deletes every key under `prefix`. */
export async function deleteKeys(prefix: string): Promise<void> {
  const r = new Redis(REDIS_URL);
  try {
    let cursor = '0';
    do {
      const [next, keys] = await r.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 500);
      cursor = next;
      if (keys.length) await r.del(...keys);
    } while (cursor !== '0');
  } finally {
    await r.quit();
  }
}

/** Connects (MQTT 3.1.1, no reconnect) and resolves on CONNACK 0; rejects on a refusal. */
export function connectMqtt(url: string, opts: IClientOptions = {}): Promise<MqttClient> {
  const client = mqtt.connect(url, { protocolVersion: 4, reconnectPeriod: 0, connectTimeout: 10_000, ...opts });
  return new Promise((resolve, reject) => {
    client.once('connect', () => resolve(client));
    client.once('error', (err) => { client.end(true); reject(err); });
    client.once('close', () => reject(new Error('connection closed before CONNACK')));
  });
}

export function closed(client: MqttClient): Promise<void> {
  return new Promise((resolve) => (client.connected ? client.once('close', () => resolve()) : resolve()));
}

/** Collects messages; `waitFor(n)` resolves once n have arrived. */
export function collector(client: MqttClient): { messages: { topic: string; payload: string }[]; waitFor(n: number): Promise<void> } {
  const messages: { topic: string; payload: string }[] = [];
  const waiters: { n: number; resolve: () => void }[] = [];
  client.on('message', (topic, payload) => {
    messages.push({ topic, payload: payload.toString() });
    for (const w of waiters.filter((x) => messages.length >= x.n)) {
      waiters.splice(waiters.indexOf(w), 1);
      w.resolve();
    }
  });
  return {
    messages,
    waitFor: (n) => new Promise((resolve) => (messages.length >= n ? resolve() : waiters.push({ n, resolve }))),
  };
}

export interface TestPki {
  dir: string;
  ca: string;
  serverCert: string;
  serverKey: string;
  /** Client certificate and key per subject CN, signed by the CA. */
  client(cn: string): { cert: string; key: string };
  /** A client certificate signed by another CA (must be refused). */
  rogue: { cert: string; key: string };
}

/** Makes a CA, a server certificate for 127.0.0.1 and client certificates with Debian's openssl, offline. */
export function makePki(): TestPki {
  const dir = mkdtempSync(join(tmpdir(), 'cs-pki-'));
  const ssl = (...args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: 'pipe' });
  const keyArgs = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
  const ca = (name: string) => ssl('req', '-x509', ...keyArgs, '-keyout', `${name}.key`, '-out', `${name}.crt`, '-subj', `/CN=${name}`, '-days', '2');
  const sign = (name: string, cn: string, caName: string, ext: string) => {
    ssl('req', ...keyArgs, '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', `/CN=${cn}`);
    writeFileSync(join(dir, `${name}.ext`), ext);
    ssl('x509', '-req', '-in', `${name}.csr`, '-CA', `${caName}.crt`, '-CAkey', `${caName}.key`, '-CAcreateserial', '-out', `${name}.crt`, '-days', '2', '-extfile', `${name}.ext`);
  };
  ca('test-ca');
  ca('rogue-ca');
  sign('server', 'localhost', 'test-ca', 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n');
  sign('rogue', 'gw1', 'rogue-ca', 'extendedKeyUsage=clientAuth\n');
  const read = (f: string) => readFileSync(join(dir, f), 'utf8');
  return {
    dir,
    ca: read('test-ca.crt'),
    serverCert: read('server.crt'),
    serverKey: read('server.key'),
    client(cn) {
      const name = `client-${cn}`;
      sign(name, cn, 'test-ca', 'extendedKeyUsage=clientAuth\n');
      return { cert: read(`${name}.crt`), key: read(`${name}.key`) };
    },
    rogue: { cert: read('rogue.crt'), key: read('rogue.key') },
  };
}

// ---- raw MQTT 3.1.1 packets (for frozen clients and malformed input) ----------------------

export function varint(n: number): Buffer {
  const out: number[] = [];
  do {
    let b = n % 128;
    n = Math.floor(n / 128);
    if (n > 0) b |= 0x80;
    out.push(b);
  } while (n > 0);
  return Buffer.from(out);
}

export function str(s: string | Buffer): Buffer {
  const b = Buffer.isBuffer(s) ? s : Buffer.from(s, 'utf8');
  const len = Buffer.alloc(2);
  len.writeUInt16BE(b.length);
  return Buffer.concat([len, b]);
}

export function packet(firstByte: number, body: Buffer): Buffer {
  return Buffer.concat([Buffer.from([firstByte]), varint(body.length), body]);
}

export function connectPacket(clientId: string, username?: string, password?: string, keepalive = 60,
  { clean = true, level = 4 }: { clean?: boolean; level?: 3 | 4 } = {}): Buffer {
  let flags = clean ? 0x02 : 0; // clean session
  if (username !== undefined) flags |= 0x80;
  if (password !== undefined) flags |= 0x40;
  const ka = Buffer.alloc(2);
  ka.writeUInt16BE(keepalive);
  return packet(0x10, Buffer.concat([
    str(level === 3 ? 'MQIsdp' : 'MQTT'), Buffer.from([level, flags]), ka, str(clientId),
    ...(username !== undefined ? [str(username)] : []), ...(password !== undefined ? [str(password)] : []),
  ]));
}

export function subscribePacket(id: number, filter: string, qos = 0): Buffer {
  const mid = Buffer.alloc(2);
  mid.writeUInt16BE(id);
  return packet(0x82, Buffer.concat([mid, str(filter), Buffer.from([qos])]));
}

export function publishPacket(topic: string, payload: Buffer | string, qos = 0, id = 1): Buffer {
  const mid = Buffer.alloc(2);
  mid.writeUInt16BE(id);
  return packet(0x30 | (qos << 1), Buffer.concat([str(topic), ...(qos > 0 ? [mid] : []), Buffer.isBuffer(payload) ? payload : Buffer.from(payload)]));
}

// ---- a raw protocol client (mqtt-packet on a socket): what a library would not send ------

export interface RawMqtt {
  /** A packet, or raw bytes (what mqtt-packet refuses to generate). */
  send(p: Packet | Buffer): void;
  /** The next packet of this command from the broker (rejects when the socket closes first). */
  next(cmd: Packet['cmd']): Promise<Packet>;
  /** Resolves when the broker closes the connection. */
  closed: Promise<void>;
  destroy(): void;
}

export function rawMqtt(port: number, host = '127.0.0.1'): Promise<RawMqtt> {
  const socket = netConnect({ port, host });
  const parser = mqttPacket.parser({ protocolVersion: 4 });
  const got: Packet[] = [];
  const waiters: { cmd: string; resolve: (p: Packet) => void; reject: (e: Error) => void }[] = [];
  let ended = false;
  const closed = new Promise<void>((resolve) => socket.once('close', () => {
    ended = true;
    for (const w of waiters.splice(0)) w.reject(new Error(`connection closed before ${w.cmd}`));
    resolve();
  }));
  socket.on('error', () => undefined);
  socket.on('data', (b) => parser.parse(b));
  parser.on('packet', (p: Packet) => {
    const i = waiters.findIndex((w) => w.cmd === p.cmd);
    if (i >= 0) waiters.splice(i, 1)[0].resolve(p);
    else got.push(p);
  });
  return new Promise((resolve, reject) => {
    socket.once('error', reject);
    socket.once('connect', () => resolve({
      send: (p) => socket.write(Buffer.isBuffer(p) ? p : mqttPacket.generate(p)),
      next: (cmd) => {
        const i = got.findIndex((p) => p.cmd === cmd);
        if (i >= 0) return Promise.resolve(got.splice(i, 1)[0]);
        if (ended) return Promise.reject(new Error(`connection closed before ${cmd}`));
        return new Promise((res, rej) => waiters.push({ cmd, resolve: res, reject: rej }));
      },
      closed,
      destroy: () => socket.destroy(),
    }));
  });
}
