import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { Redis } from 'ioredis';
import mqtt, { type MqttClient } from 'mqtt';
import { afterAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { CredentialStore } from '../../gateway/credentials.ts';
import { SERVICE, account, gatewayName } from '../../bench/identities.ts';
import { deviceName, readingPayload, writeDistrict } from '../../bench/ingest-setup.ts';
import { deleteKeys, REDIS_URL, redisAvailable, uniquePrefix } from '../gateway/helpers.ts';
import { eventually, runCli, type Running } from '../helpers/process.ts';

/**
 * The recommended separate-services deployment (docs/architecture.md#processes-and-deployments):
 * `citysteward gateway` appends each reading to a Redis Stream before its PUBACK, `citysteward cloud`
 * acknowledges the entry (XACK) only after storing it and, restarted under the same consumer name,
 * handles its pending entries first. Killing either process mid-load loses no acknowledged reading
 * and duplicates none.
 */

const redisOk = await redisAvailable();
if (!redisOk) console.warn(`[skip] separate services under SIGKILL: no Redis at ${REDIS_URL}`);

const GATEWAYS = 4;
const DEVICES = 5;
const PER_GATEWAY = 1500;
const WINDOW = 10;

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer().once('error', reject).listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as AddressInfo;
      srv.close(() => resolve(port));
    });
  });
}

describe.skipIf(!redisOk)('separate services under SIGKILL (gateway → Redis Stream → cloud)', () => {
  const prefix = uniquePrefix('sigkill');
  const dir = mkdtempSync(join(tmpdir(), 'cs-sigkill-'));
  const running: Running[] = [];
  const clients: MqttClient[] = [];

  afterAll(async () => {
    for (const c of clients) await c.endAsync(true).catch(() => undefined);
    for (const r of running) await r.stop();
    await deleteKeys(prefix);
    rmSync(dir, { recursive: true, force: true });
  });

  it('every reading acknowledged to a publisher is stored exactly once after the cloud and then the broker are killed mid-load and restarted', async () => {
    writeDistrict(dir, GATEWAYS, DEVICES);
    const store = CredentialStore.open(join(dir, 'credentials.json'));
    for (let g = 0; g < GATEWAYS; g++) store.create(gatewayName(g), 'gateway', account(gatewayName(g)).password);
    store.create(SERVICE, 'service', account(SERVICE).password);
    const port = await freePort();
    writeFileSync(join(dir, 'gateway.yaml'), stringify({ redis: { url: REDIS_URL, keyPrefix: prefix }, stream: { key: 'readings' } }));
    writeFileSync(join(dir, 'cloud.yaml'), stringify({
      district: 'district.yaml', http: { host: '127.0.0.1', port: 0 }, database: { kind: 'sqlite', file: 'citysteward.db' },
      mqtt: { url: `mqtt://127.0.0.1:${port}`, ...account(SERVICE) },
      stream: { url: REDIS_URL, key: `${prefix}readings`, group: 'cloud', consumer: 'cloud-1' },
    }));
    const env = { CS_LOG_LEVEL: 'error' };
    const startGateway = async (): Promise<Running> => {
      const r = runCli(['gateway', '--config', join(dir, 'gateway.yaml'), '--data-dir', dir, '--host', '127.0.0.1', '--mqtt-port', String(port)], env);
      running.push(r);
      await r.waitFor(/MQTT listening/, 30_000);
      return r;
    };
    const startCloud = async (): Promise<Running> => {
      const r = runCli(['cloud', '--config', join(dir, 'cloud.yaml'), '--data-dir', dir], env);
      running.push(r);
      await r.waitFor(/HTTP API on/, 30_000);
      return r;
    };
    const kill = async (r: Running): Promise<void> => {
      r.child.kill('SIGKILL');
      await r.exited;
    };
    let gateway = await startGateway();
    let cloud = await startCloud();

    // Simulated gateways: QoS 1, at most WINDOW unacknowledged each; mqtt.js resends those after a reconnect.
    const acked = new Set<string>();
    // Sends beyond `allowed` (all gateways together) wait, so that each kill lands mid-load.
    let sent = 0;
    let allowed = 1500;
    const held: (() => void)[] = [];
    const allow = (n: number): void => { allowed = n; for (const f of held.splice(0)) f(); };
    const publishing = Array.from({ length: GATEWAYS }, (_, g) => new Promise<void>((resolve, reject) => {
      const { username, password } = account(gatewayName(g));
      const c = mqtt.connect(`mqtt://127.0.0.1:${port}`, { protocolVersion: 4, clientId: `${username}-edge`, clean: false, username, password, reconnectPeriod: 200 });
      clients.push(c);
      c.on('error', () => undefined); // refused while the broker restarts: mqtt.js retries
      let next = 0;
      const ts = new Date().toISOString();
      const send = (): void => {
        if (sent >= allowed) { held.push(send); return; }
        sent++;
        const seq = ++next;
        const d = seq % DEVICES;
        c.publish(`cs/v1/${username}/up/${deviceName(g, d)}`, readingPayload(g, d, seq, ts), { qos: 1 }, (err) => {
          if (err) return reject(err);
          acked.add(`${username}/${deviceName(g, d)}/${seq}`);
          if (next < PER_GATEWAY) send();
          else if (acked.size === GATEWAYS * PER_GATEWAY) resolve();
        });
      };
      c.once('connect', () => { for (let i = 0; i < WINDOW; i++) send(); });
    }));

    await eventually(() => acked.size >= 1000, 60_000, 10);
    await kill(cloud);
    allow(3000);
    await eventually(() => acked.size >= 2500, 60_000, 10); // the broker still acknowledges: Redis holds them
    cloud = await startCloud();
    allow(4500);
    await eventually(() => acked.size >= 4000, 60_000, 10);
    await kill(gateway);
    const ackedAtKill = acked.size;
    gateway = await startGateway();
    allow(GATEWAYS * PER_GATEWAY);
    await Promise.race([Promise.any(publishing), new Promise((_, reject) => setTimeout(() => reject(new Error(`publishers stalled at ${acked.size} acknowledged`)), 120_000))]);
    expect(acked.size).toBe(GATEWAYS * PER_GATEWAY);
    expect(ackedAtKill).toBeLessThan(GATEWAYS * PER_GATEWAY);

    // The cloud drains the stream: nothing pending in the group, every acknowledged reading stored once.
    const redis = new Redis(REDIS_URL);
    try {
      await eventually(async () => {
        const [pending] = await redis.xpending(`${prefix}readings`, 'cloud') as [number];
        const info = await redis.xinfo('GROUPS', `${prefix}readings`) as unknown[][];
        const lag = Number(info[0]![info[0]!.indexOf('lag') + 1]);
        return pending === 0 && lag === 0;
      }, 60_000, 200);
    } finally {
      await redis.quit();
    }
    const db = new Database(join(dir, 'citysteward.db'), { readonly: true });
    try {
      const rows = db.prepare('select gateway, device, seq, stream from readings').all() as { gateway: string; device: string; seq: number; stream: string }[];
      const stored = new Set(rows.map((r) => `${r.gateway}/${r.device}/${r.seq}`));
      expect(stored.size).toBe(rows.length); // no reading twice
      const missing = [...acked].filter((k) => !stored.has(k));
      expect(missing).toEqual([]);
      expect(rows.length).toBe(GATEWAYS * PER_GATEWAY);
    } finally {
      db.close();
    }
  }, 300_000);
});
