import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { connect, createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { buildCloud } from '../../cloud/app.ts';
import { openPointQueue } from '../../cloud/influx/queue.ts';
import { checkInflux, toLine } from '../../cloud/influx/sink.ts';
import { eventually } from '../helpers/process.ts';
import { profiles, reading, syntheticDistrict } from './fixtures.ts';

/**
 * The InfluxDB sink (README "InfluxDB sink") against Debian's VictoriaMetrics, which accepts
 * InfluxDB's /api/v2/write: readings stream through the cloud's ingest, the server goes away abruptly
 * for ten seconds under load and comes back on the same port and data, and every point arrives once.
 * .ci/run installs victoria-metrics; without the binary the end-to-end test is skipped.
 */

const VM = spawnSync('sh', ['-c', 'command -v victoria-metrics']).stdout?.toString().trim() || '';
const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const c of cleanups.reverse()) await c();
  cleanups.length = 0;
});

function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'cs-influx-'));
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

async function freePort(): Promise<number> {
  const srv = createServer();
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const port = (srv.address() as { port: number }).port;
  await new Promise((r) => srv.close(r));
  return port;
}

/**
 * A loopback TCP proxy in front of a server. cut(): every open connection is reset (RST) mid-write and
 * the port stops listening, so new ones are refused; restore(): it listens again on the same port.
 */
async function tcpProxy(target: number): Promise<{ port: number; cut(): Promise<number>; restore(): Promise<void>; close(): Promise<void> }> {
  const sockets = new Set<Socket>();
  let server: Server | undefined;
  let port = 0;
  const listen = async () => {
    const srv = createServer((client) => {
      const upstream = connect(target, '127.0.0.1');
      const pair = [client, upstream];
      const drop = () => { for (const s of pair) { s.destroy(); sockets.delete(s); } };
      for (const s of pair) { sockets.add(s); s.on('error', drop).on('close', drop); }
      client.pipe(upstream);
      upstream.pipe(client);
    });
    await new Promise<void>((r) => srv.listen(port, '127.0.0.1', r));
    port = (srv.address() as AddressInfo).port;
    server = srv;
  };
  const cut = async () => {
    const srv = server;
    server = undefined;
    const closed = srv ? new Promise((r) => srv.close(r)) : undefined;
    const open = [...sockets];
    sockets.clear();
    for (const s of open) s.resetAndDestroy();
    await closed;
    return open.length / 2;
  };
  await listen();
  return { port, cut, restore: listen, close: async () => { await cut(); } };
}

describe('the InfluxDB sink\'s parts', () => {
  it('writes a reading as line protocol: the kind as measurement, device and gateway tags, numeric fields, ms time', () => {
    expect(toLine({ device: 'WL 1', gateway: 'gw,1', kind: 'water-level', ts: 1700000000123, values: { level_m: 0.25, ok: true, battery_pct: 90 } }))
      .toBe('water-level,device=WL\\ 1,gateway=gw\\,1 level_m=0.25,battery_pct=90 1700000000123');
    expect(toLine({ device: 'X', gateway: 'g', ts: 1, values: { state: 'open' } })).toBeUndefined();
    expect(toLine({ device: 'X', gateway: 'g', ts: 1, values: { v: 1 } })).toBe('reading,device=X,gateway=g v=1 1');
  });

  it('refuses a configuration without url, org, bucket or token, never echoing the token', () => {
    const problems = checkInflux({ url: 'ftp://x', org: '', bucket: 'b', token: 'sekrit-token', maxQueueBytes: 10 });
    expect(problems).toEqual(['influx.org is required', 'influx.url must be an http(s) URL', 'influx.maxQueueBytes must be an integer of at least 65536']);
    expect(problems.join(' ')).not.toContain('sekrit-token');
  });

  it('keeps queued points across a reopen, hands them out in order, and forgets only what was acknowledged', () => {
    const dir = tempDir();
    let q = openPointQueue(dir, 1 << 20);
    q.append(['a 1', 'b 2']);
    q.append(['c 3']);
    const first = q.peek(2);
    expect(first.lines).toEqual(['a 1', 'b 2']);
    q.ack(first.next, 2);
    q.close();
    q = openPointQueue(dir, 1 << 20);
    expect(q.depth()).toBe(1);
    q.append(['d 4']);
    expect(q.peek(10).lines).toEqual(['c 3', 'd 4']);
    q.close();
  });

  it('drops the oldest points over the byte cap and counts them', () => {
    const dir = tempDir();
    const q = openPointQueue(dir, 600 * 1024);
    const line = 'x'.repeat(1023);
    for (let i = 0; i < 100; i++) q.append(Array.from({ length: 10 }, (_, j) => `${line}${j}`));
    expect(q.bytes()).toBeLessThanOrEqual(600 * 1024);
    expect(q.dropped()).toBeGreaterThan(0);
    expect(q.depth() + q.dropped()).toBe(1000);
    q.close();
  });
});

describe.skipIf(!VM)('the InfluxDB sink against VictoriaMetrics (skipped: victoria-metrics is not installed; .ci/run installs it)', () => {
  it('loses nothing and duplicates nothing when the server is cut off for ten seconds under load', { timeout: 90_000 }, async () => {
    const dir = tempDir();
    const vmPort = await freePort();
    const vmBase = `http://127.0.0.1:${vmPort}`;
    // The outage is abrupt for the sink: a TCP proxy between it and VictoriaMetrics resets every open
    // connection mid-write and refuses new ones for ten seconds, then listens again on the same port.
    // VictoriaMetrics itself stays up (a SIGKILL would lose rows it acknowledged from its ~1 s in-memory
    // buffer, which is not the client's fault). A batch whose acknowledgement the reset swallowed is sent
    // again; InfluxDB overwrites an identical point, and -dedup.minScrapeInterval=1ms makes VictoriaMetrics
    // do the same (it keeps one sample per series and millisecond), so "once" is checked as InfluxDB would store it.
    const vm = spawn(VM, ['-httpListenAddr', `127.0.0.1:${vmPort}`, '-storageDataPath', join(dir, 'vm'), '-retentionPeriod', '100y', '-dedup.minScrapeInterval=1ms', '-loggerLevel', 'ERROR'], { stdio: 'ignore' });
    cleanups.push(async () => {
      if (vm.exitCode !== null) return;
      const exited = new Promise((r) => vm.once('exit', r));
      vm.kill('SIGINT');
      await exited;
    });
    await eventually(async () => (await fetch(`${vmBase}/health`).catch(() => undefined))?.ok, 15_000);
    const proxy = await tcpProxy(vmPort);
    cleanups.push(() => proxy.close());

    const district = syntheticDistrict(20, 2);
    const devices = district.devices.filter((d) => d.id.startsWith('WL-T-')).map((d, i) => ({ id: d.id, gw: `gw-t-${i % 2}` }));
    const cloud = await buildCloud({
      db: { kind: 'sqlite', file: join(dir, 'cloud.db') }, district, profiles, escalation: false, emergency: false,
      influx: { url: `http://127.0.0.1:${proxy.port}`, org: 'city', bucket: 'readings', token: 'test-token', queueDir: join(dir, 'queue'), batchPoints: 200, retryMinMs: 100, retryMaxMs: 500 },
    });
    cleanups.push(() => cloud.stop());
    await cloud.start();
    const auth = { authorization: `Bearer ${await cloud.tokens.create('operator')}` };
    const queued = async () => {
      const body = (await cloud.app.inject({ url: '/metrics', headers: auth })).body;
      return Number(/^cs_cloud_influx_queue_points (\S+)$/m.exec(body)?.[1]);
    };

    // Load for 2 s, cut for 10 s (measured from the cut), then 3 s more load after the way is open again.
    const t0 = Date.now() - 3_600_000;
    const t = Date.now();
    let rounds = 0;
    let cutAt: number | undefined;
    let restoredAt: number | undefined;
    let roundsAtRestore = 0;
    let maxQueued = 0;
    while (restoredAt === undefined || Date.now() - restoredAt < 3_000) {
      rounds += 1;
      const r = rounds;
      const results = await Promise.all(devices.map((d) => cloud.ingest(d.gw, `cs/v1/${d.gw}/up/${d.id}`, reading(d.id, r, t0 + r * 1000, { level_m: r / 1000, battery_pct: 90 }))));
      for (const res of results) expect(res.status).toBe('stored');
      if (cutAt === undefined && Date.now() - t >= 2_000) { await proxy.cut(); cutAt = Date.now(); }
      if (cutAt !== undefined && restoredAt === undefined) maxQueued = Math.max(maxQueued, await queued());
      if (cutAt !== undefined && restoredAt === undefined && Date.now() - cutAt >= 10_000) {
        await proxy.restore();
        restoredAt = Date.now();
        roundsAtRestore = rounds;
      }
      await new Promise((res) => setTimeout(res, 60));
    }
    expect(restoredAt! - cutAt!).toBeGreaterThanOrEqual(10_000);
    // Readings kept arriving after the way was open again, and they are checked below too.
    expect(rounds - roundsAtRestore).toBeGreaterThan(10);
    // While the server was unreachable the points waited on disk.
    expect(maxQueued).toBeGreaterThan(0);
    await eventually(async () => (await queued()) === 0, 20_000);

    await fetch(`${vmBase}/internal/force_flush`);
    const expectedCount = devices.length * rounds * 2;
    const exported = await eventually(async () => {
      const res = await fetch(`${vmBase}/api/v1/export?match[]=${encodeURIComponent('{device=~"WL-T-.*"}')}`);
      const lines = (await res.text()).split('\n').filter(Boolean).map((l) => JSON.parse(l) as { metric: Record<string, string>; timestamps: number[] });
      return lines.reduce((n, l) => n + l.timestamps.length, 0) >= expectedCount ? lines : undefined;
    }, 10_000);
    const seen = new Map<string, number>();
    for (const l of exported) for (const ts of l.timestamps) {
      const key = `${l.metric.__name__}|${l.metric.device}|${l.metric.gateway}|${ts}`;
      seen.set(key, (seen.get(key) ?? 0) + 1);
    }
    const expected: string[] = [];
    for (const d of devices) for (let r = 1; r <= rounds; r++) for (const f of ['level_m', 'battery_pct']) expected.push(`water-level_${f}|${d.id}|${d.gw}|${t0 + r * 1000}`);
    expect(expected.filter((k) => seen.get(k) !== 1)).toEqual([]);
    expect(seen.size).toBe(expected.length);
  });
});
