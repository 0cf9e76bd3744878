import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
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
 * InfluxDB's /api/v2/write: readings stream through the cloud's ingest, the server goes away for
 * seconds under load and comes back on the same port and data, and every point arrives once.
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
  it('loses nothing and duplicates nothing when the server is down for seconds under load', { timeout: 60_000 }, async () => {
    const dir = tempDir();
    const port = await freePort();
    const base = `http://127.0.0.1:${port}`;
    let vm: ChildProcess | undefined;
    const startVm = async () => {
      vm = spawn(VM, ['-httpListenAddr', `127.0.0.1:${port}`, '-storageDataPath', join(dir, 'vm'), '-retentionPeriod', '100y', '-loggerLevel', 'ERROR'], { stdio: 'ignore' });
      await eventually(async () => (await fetch(`${base}/health`).catch(() => undefined))?.ok, 15_000);
    };
    // A graceful stop: a SIGKILL loses VictoriaMetrics' own acknowledged in-memory rows (not a client's fault).
    const stopVm = async () => {
      const p = vm!;
      if (p.exitCode !== null) return;
      const exited = new Promise((r) => p.once('exit', r));
      p.kill('SIGINT');
      await exited;
    };
    cleanups.push(() => vm && vm.exitCode === null && vm.kill('SIGKILL'));
    await startVm();

    const district = syntheticDistrict(20, 2);
    const devices = district.devices.filter((d) => d.id.startsWith('WL-T-')).map((d, i) => ({ id: d.id, gw: `gw-t-${i % 2}` }));
    const cloud = await buildCloud({
      db: { kind: 'sqlite', file: join(dir, 'cloud.db') }, district, profiles, escalation: false, emergency: false,
      influx: { url: base, org: 'city', bucket: 'readings', token: 'test-token', queueDir: join(dir, 'queue'), batchPoints: 200, retryMinMs: 100, retryMaxMs: 500 },
    });
    cleanups.push(() => cloud.stop());
    await cloud.start();
    const auth = { authorization: `Bearer ${await cloud.tokens.create('operator')}` };
    const queued = async () => {
      const body = (await cloud.app.inject({ url: '/metrics', headers: auth })).body;
      return Number(/^cs_cloud_influx_queue_points (\S+)$/m.exec(body)?.[1]);
    };

    const t0 = Date.now() - 3_600_000;
    const ROUNDS = 150;
    let down = false;
    let maxQueued = 0;
    const t = Date.now();
    for (let r = 1; r <= ROUNDS; r++) {
      const results = await Promise.all(devices.map((d) => cloud.ingest(d.gw, `cs/v1/${d.gw}/up/${d.id}`, reading(d.id, r, t0 + r * 1000, { level_m: r / 1000, battery_pct: 90 }))));
      for (const res of results) expect(res.status).toBe('stored');
      if (r === 30) { await stopVm(); down = true; }
      if (down && Date.now() - t > 9_000) { maxQueued = Math.max(maxQueued, await queued()); await startVm(); down = false; }
      await new Promise((res) => setTimeout(res, 60));
    }
    expect(down).toBe(false);
    // While the server was down the points waited on disk.
    expect(maxQueued).toBeGreaterThan(0);
    await eventually(async () => (await queued()) === 0, 20_000);

    await fetch(`${base}/internal/force_flush`);
    const exported = await eventually(async () => {
      const res = await fetch(`${base}/api/v1/export?match[]=${encodeURIComponent('{device=~"WL-T-.*"}')}`);
      const lines = (await res.text()).split('\n').filter(Boolean).map((l) => JSON.parse(l) as { metric: Record<string, string>; timestamps: number[] });
      return lines.reduce((n, l) => n + l.timestamps.length, 0) >= devices.length * ROUNDS * 2 ? lines : undefined;
    }, 10_000);
    const seen = new Map<string, number>();
    for (const l of exported) for (const ts of l.timestamps) {
      const key = `${l.metric.__name__}|${l.metric.device}|${l.metric.gateway}|${ts}`;
      seen.set(key, (seen.get(key) ?? 0) + 1);
    }
    const expected: string[] = [];
    for (const d of devices) for (let r = 1; r <= ROUNDS; r++) for (const f of ['level_m', 'battery_pct']) expected.push(`water-level_${f}|${d.id}|${d.gw}|${t0 + r * 1000}`);
    expect(expected.filter((k) => seen.get(k) !== 1)).toEqual([]);
    expect(seen.size).toBe(expected.length);
    await stopVm();
  });
});
