import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { connect as netConnect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { MqttClient } from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openCredentialStore } from '../../gateway/credentials.ts';
import { runCli, type Running } from '../helpers/process.ts';
import { collector, connectMqtt, connectPacket, packet, publishPacket, str, subscribePacket, varint } from './helpers.ts';

/**
 * Bad input against a gateway process: malformed packets, replays of inputs that crashed
 * MQTT brokers before, seeded random garbage, and a flood of oversized payloads. The process
 * must stay up and keep serving a well-behaved gateway and its subscriber.
 */

const PASS = { gw1: 'gw1-password-0001', cloud: 'cloud-password-001' };
const auth = () => connectPacket(`fz-${Math.random().toString(36).slice(2, 10)}`, 'gw1', PASS.gw1);

/** Name, bytes. Each goes on a fresh connection. */
const CRASHERS: [string, () => Buffer][] = [
  ['remaining length claiming 256 MB (Mosquitto CVE-2017-7651)', () => Buffer.from([0x10, 0xff, 0xff, 0xff, 0x7f])],
  ['remaining length with a fifth continuation byte', () => Buffer.from([0x30, 0xff, 0xff, 0xff, 0xff, 0x01])],
  ['reserved packet type 0', () => Buffer.from([0x00, 0x00])],
  ['reserved packet type 15', () => Buffer.from([0xf0, 0x00])],
  ['PUBLISH before CONNECT', () => publishPacket('cs/v1/gw1/up/d1', 'x', 1)],
  ['SUBSCRIBE before CONNECT', () => subscribePacket(1, '#')],
  ['CONNECT with protocol level 5 and bogus properties (Mosquitto CVE-2021-28166 style)', () =>
    packet(0x10, Buffer.concat([str('MQTT'), Buffer.from([5, 0xc2, 0, 60, 0x05, 0x15, 0xff, 0xff, 0xff]), str('x')]))],
  ['CONNECT with protocol level 3 and a wrong name', () => packet(0x10, Buffer.concat([str('MQIsdpX'), Buffer.from([3, 2, 0, 60]), str('x')]))],
  ['CONNECT with reserved flag bit set', () => packet(0x10, Buffer.concat([str('MQTT'), Buffer.from([4, 0x03, 0, 60]), str('x')]))],
  ['CONNECT with a Will flag but no Will topic', () => packet(0x10, Buffer.concat([str('MQTT'), Buffer.from([4, 0x06, 0, 60]), str('x')]))],
  ['CONNECT with username flag but truncated username', () => packet(0x10, Buffer.concat([str('MQTT'), Buffer.from([4, 0x82, 0, 60]), str('x'), Buffer.from([0xff, 0xff, 0x61])]))],
  ['CONNECT with client id __proto__ (aedes GHSA-52qw-whmv-87c5)', () => connectPacket('__proto__', 'gw1', PASS.gw1)],
  ['CONNECT with client id constructor', () => connectPacket('constructor', 'gw1', PASS.gw1)],
  ['CONNECT with invalid UTF-8 in the client id', () => packet(0x10, Buffer.concat([str('MQTT'), Buffer.from([4, 2, 0, 60]), str(Buffer.from([0xc3, 0x28, 0xff]))]))],
  ['two CONNECTs on one connection', () => Buffer.concat([auth(), auth()])],
  ['PUBLISH with QoS 3', () => Buffer.concat([auth(), packet(0x36, Buffer.concat([str('cs/v1/gw1/up/d1'), Buffer.from([0, 1]), Buffer.from('x')]))])],
  ['PUBLISH to a $ topic other than $SYS (Mosquitto CVE-2018-12543)', () => Buffer.concat([auth(), publishPacket('$test/x', 'y', 1)])],
  ['PUBLISH with a NUL in the topic', () => Buffer.concat([auth(), publishPacket('cs/v1/gw1/up/d\u00001', 'y', 1)])],
  ['PUBLISH with a topic of 300 levels', () => Buffer.concat([auth(), publishPacket(`cs/v1/gw1/up/${'a/'.repeat(300)}x`, 'y', 1)])],
  ['SUBSCRIBE to 65,000 slashes (Mosquitto CVE-2019-11779)', () => Buffer.concat([auth(), subscribePacket(1, '/'.repeat(65000))])],
  ['SUBSCRIBE with no filter', () => Buffer.concat([auth(), packet(0x82, Buffer.from([0, 1]))])],
  ['SUBSCRIBE with QoS 3 requested', () => Buffer.concat([auth(), subscribePacket(1, 'cs/v1/gw1/cmd', 3)])],
  ['SUBSCRIBE with wrong fixed-header flags', () => Buffer.concat([auth(), packet(0x80, Buffer.concat([Buffer.from([0, 1]), str('cs/v1/gw1/cmd'), Buffer.from([1])]))])],
  ['UNSUBSCRIBE with no filter', () => Buffer.concat([auth(), packet(0xa2, Buffer.from([0, 1]))])],
  ['PUBREL and PUBACK for unknown message ids', () => Buffer.concat([auth(), packet(0x62, Buffer.from([0x12, 0x34])), packet(0x40, Buffer.from([0x43, 0x21]))])],
  ['QoS 2 PUBLISH never released, 2,000 times', () => Buffer.concat([auth(), ...Array.from({ length: 2000 }, (_, i) => publishPacket('cs/v1/gw1/health', 'x', 2, i + 1))])],
  ['a PUBLISH cut short, then the socket closed', () => Buffer.concat([auth(), publishPacket('cs/v1/gw1/up/d1', 'x'.repeat(100), 1).subarray(0, 20)])],
  ['PINGREQ with a body', () => Buffer.concat([auth(), Buffer.from([0xc0, 0x02, 0x00, 0x00])])],
];

/** Writes `bytes` on a fresh socket and waits until the broker closes it (or 500 ms pass), then closes it. */
function hit(port: number, bytes: Buffer): Promise<void> {
  return new Promise((resolve) => {
    const s = netConnect(port, '127.0.0.1');
    s.on('error', () => undefined);
    s.on('data', () => undefined);
    const done = () => { clearTimeout(t); s.destroy(); resolve(); };
    const t = setTimeout(done, 500);
    s.once('close', done);
    s.once('connect', () => s.write(bytes, () => undefined));
  });
}

/** A deterministic generator (mulberry32), so that a failing garbage case can be replayed. */
function prng(seed: number): () => number {
  return () => {
    seed |= 0; seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const rss = (pid: number) => Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))![1]) * 1024;

describe('bad input against a gateway process', () => {
  const dir = mkdtempSync(join(tmpdir(), 'cs-fuzz-'));
  let broker: Running;
  let port: number;
  const clients: MqttClient[] = [];

  beforeAll(async () => {
    const store = openCredentialStore(dir);
    store.create('gw1', 'gateway', PASS.gw1);
    store.create('cloud', 'service', PASS.cloud);
    const config = join(dir, 'gateway.yaml');
    writeFileSync(config, 'mqtt:\n  maxPacketSizeBytes: 65536\nlimits:\n  connectionsPerSecond: 100000\n  connectionBurst: 100000\n');
    broker = runCli(['gateway', '--config', config, '--data-dir', dir, '--host', '127.0.0.1', '--mqtt-port', '0'], { CS_LOG_LEVEL: 'fatal' });
    port = Number((await broker.waitFor(/MQTT listening on mqtt:\/\/[\d.]+:(\d+)/))[1]);
  });

  afterAll(async () => {
    for (const c of clients) await c.endAsync(true).catch(() => undefined);
    await broker.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  async function stillServes(tag: string): Promise<void> {
    const sub = await connectMqtt(`mqtt://127.0.0.1:${port}`, { username: 'cloud', password: PASS.cloud });
    const gw = await connectMqtt(`mqtt://127.0.0.1:${port}`, { username: 'gw1', password: PASS.gw1 });
    clients.push(sub, gw);
    const got = collector(sub);
    await sub.subscribeAsync('cs/v1/gw1/up/+', { qos: 1 });
    await gw.publishAsync('cs/v1/gw1/up/ok', tag, { qos: 1 });
    await got.waitFor(1);
    expect(got.messages[0].payload).toBe(tag);
    await sub.endAsync();
    await gw.endAsync();
  }

  it('survives malformed packets and replays of known broker crashers', async () => {
    for (const [name, bytes] of CRASHERS) {
      await hit(port, bytes());
      expect(broker.child.exitCode, `broker exited after: ${name}`).toBeNull();
    }
    await stillServes('after crashers');
  });

  it('survives 300 connections of seeded random garbage, before and after CONNECT', async () => {
    const rand = prng(20260914);
    const batch: Promise<void>[] = [];
    for (let i = 0; i < 300; i++) {
      const garbage = Buffer.from(Array.from({ length: 1 + Math.floor(rand() * 2048) }, () => Math.floor(rand() * 256)));
      batch.push(hit(port, i % 2 ? Buffer.concat([auth(), garbage]) : garbage));
      if (batch.length === 100) await Promise.all(batch.splice(0));
    }
    await Promise.all(batch);
    expect(broker.child.exitCode).toBeNull();
    await stillServes('after garbage');
  });

  it('closes a flood of oversized publishes at their headers, keeps memory bounded and keeps serving others', async () => {
    const before = rss(broker.child.pid!);
    const header = (size: number) => Buffer.concat([Buffer.from([0x32]), varint(size)]);
    const flood = Array.from({ length: 100 }, () => new Promise<void>((resolve) => {
      const s = netConnect(port, '127.0.0.1');
      s.on('error', () => undefined);
      s.once('close', () => resolve());
      s.once('connect', () => {
        s.write(auth());
        // Claims 100 MB and starts sending it; the broker must close at the header.
        s.write(header(100 * 1024 * 1024));
        const chunk = Buffer.alloc(64 * 1024, 0x78);
        const pump = () => { while (!s.destroyed && s.write(chunk)); };
        s.on('drain', pump);
        pump();
      });
    }));
    await stillServes('during the flood');
    await Promise.all(flood);
    const after = rss(broker.child.pid!);
    console.log(`oversized flood: broker RSS ${(before / 1e6).toFixed(1)} MB before, ${(after / 1e6).toFixed(1)} MB after 100 connections each claiming 100 MB`);
    expect(after - before).toBeLessThan(100 * 1024 * 1024); // far below the 10 GB claimed
    expect(broker.child.exitCode).toBeNull();
    await stillServes('after the flood');
  });
});
