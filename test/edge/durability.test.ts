import { copyFileSync, existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Sqlite } from '../../lib/sqlite.ts';
import { afterEach, describe, expect, it } from 'vitest';
import type { Reading } from '../../lib/messages.ts';
import { loadProfiles } from '../../devices/profile.ts';
import { buildSimulator, type Simulator } from '../../devices/simulator.ts';
import { buildEdge, type Edge } from '../../edge/edge.ts';
import type { EdgeConfigInput } from '../../edge/config.ts';
import { OUTBOX_FILE } from '../../edge/outbox.ts';
import { runCli, type Running } from '../helpers/process.ts';
import { recordingBroker, until, type RecordingBroker } from './helpers.ts';

/**
 * Nothing accepted is lost, nothing is stored twice (docs/targets.md#reliability-and-security-figures): the broker goes away
 * under steady polling, and the edge process is killed with SIGKILL while readings wait for it.
 */

const profiles = loadProfiles();
const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'cs-durable-'));
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

async function broker(): Promise<RecordingBroker> {
  const b = await recordingBroker();
  cleanups.push(() => b.stop());
  return b;
}

async function sim(): Promise<Simulator> {
  const s = buildSimulator({ port: 0, devices: [
    { id: 'WL-1', profile: profiles.get('water-level')!, unitId: 1 },
    { id: 'MH-1', profile: profiles.get('manhole-cover')!, unitId: 2 },
  ] });
  await s.start();
  cleanups.push(() => s.stop());
  return s;
}

function config(gw: string, mqttPort: number, simPort: number): EdgeConfigInput {
  return {
    gateway: gw,
    mqtt: { url: `mqtt://127.0.0.1:${mqttPort}`, username: gw, password: 'pw', keepaliveS: 5 },
    pollMs: 100,
    healthMs: 0,
    buses: [{ id: 'bus-a', host: '127.0.0.1', port: simPort, timeoutMs: 500 }],
    devices: [
      { id: 'WL-1', profile: 'water-level', bus: 'bus-a', unitId: 1 },
      { id: 'MH-1', profile: 'manhole-cover', bus: 'bus-a', unitId: 2 },
    ],
  };
}

/** The rows of an outbox file as a crash left it, read from a copy so the original stays untouched. */
function outboxRows(dataDir: string, scratch: string): { seq: number; payload: string }[] {
  const copy = join(scratch, `copy-${Date.now()}-${Math.random().toString(16).slice(2)}`);
  const src = join(dataDir, OUTBOX_FILE);
  if (!existsSync(src)) return [];
  copyFileSync(src, `${copy}.sqlite`);
  for (const ext of ['-wal', '-shm']) if (existsSync(src + ext)) copyFileSync(src + ext, `${copy}.sqlite${ext}`);
  const db = new Sqlite(`${copy}.sqlite`);
  try {
    return db.prepare('SELECT seq, payload FROM outbox ORDER BY seq').all() as { seq: number; payload: string }[];
  } finally {
    db.close();
  }
}

const seqsOf = (rs: Reading[]) => rs.map((r) => r.seq);

function expectIncreasing(seqs: number[]): void {
  for (let i = 1; i < seqs.length; i++) expect(seqs[i], `at ${i}: ${seqs.slice(Math.max(0, i - 3), i + 2).join(',')}`).toBeGreaterThan(seqs[i - 1]);
}

describe('edge outbox durability', () => {
  it('loses nothing and stores nothing twice when the broker goes away under steady polling, and flags the replay historical', async () => {
    const gw = 'gw-outage';
    const b = await broker();
    const s = await sim();
    const edge: Edge = buildEdge({ config: config(gw, b.port, s.port), profiles, dataDir: tempDir(), reconnectMs: 100 });
    cleanups.push(() => edge.stop());
    await edge.start();
    await until(() => b.store.size >= 6);

    await b.stop();
    const maxBefore = Math.max(...[...b.store.values()].map((r) => r.seq));
    // Polling goes on: readings pile up in the outbox.
    await until(() => edge.stats().outbox.depth >= 15);
    const acceptedOffline = edge.stats().seq;
    await b.start();
    // Back online: the backlog drains while new readings keep coming live.
    await until(() => [...b.store.values()].some((r) => r.seq > acceptedOffline + 4 && !r.historical));
    await edge.stop();

    const stored = [...b.store.values()].sort((x, y) => x.seq - y.seq);
    const last = edge.stats().seq;
    // Nothing lost: every seq this run handed out is stored (a clean stop flushed the outbox).
    expect(seqsOf(stored)).toEqual(Array.from({ length: last }, (_, i) => i + 1));
    // Replay in order: the second broker got its readings in seq order.
    const second = b.deliveries.filter((d) => d.life === 1);
    const firstCopies = second.filter((d, i) => second.findIndex((x) => x.reading.seq === d.reading.seq) === i);
    expectIncreasing(firstCopies.map((d) => d.reading.seq));
    // Historical: the readings taken while offline, and only those that were never live.
    const historical = stored.filter((r) => r.historical);
    const h = seqsOf(historical);
    expect(h.length).toBeGreaterThanOrEqual(10);
    // One contiguous run: what was read from the cut to the reconnection, nothing before, nothing after.
    expect(h).toEqual(Array.from({ length: h.length }, (_, i) => h[0] + i));
    expect(h[0]).toBeGreaterThan(maxBefore);
    expect(h.at(-1)!).toBeGreaterThanOrEqual(acceptedOffline);
    for (const r of stored.filter((x) => x.seq < h[0] || x.seq > h.at(-1)!)) expect(r.historical).toBe(false);
    // Any second copy is a retransmission of a reading the first broker may have had: the store kept one.
    const copies = b.deliveries.length - b.store.size;
    expect(copies).toBeLessThanOrEqual(64);
    // The outbox ended empty (the clean stop flushed it) and dropped nothing.
    const box = edge.stats().outbox;
    expect(box).toMatchObject({ depth: 0, dropped: 0, appended: last });
    expect(box.acked).toBe(last);
  });

  it('delivers every accepted reading once and in order after the edge is killed with SIGKILL while the broker is down', async () => {
    const gw = 'gw-kill';
    const b = await broker();
    const s = await sim();
    const dir = tempDir();
    const dataDir = join(dir, 'data');
    const file = join(dir, 'edge.yaml');
    writeFileSync(file, JSON.stringify(config(gw, b.port, s.port)));
    const children: Running[] = [];
    const spawnEdge = () => {
      const c = runCli(['edge', '--config', file, '--data-dir', dataDir], { CS_LOG_LEVEL: 'warn' });
      children.push(c);
      return c;
    };
    cleanups.push(async () => { for (const c of children) await c.stop(); });

    const first = spawnEdge();
    await until(() => b.store.size >= 4);
    await b.stop();
    const liveSeqs = new Set([...b.store.values()].map((r) => r.seq));
    // Readings queue on disk while the broker is away.
    await until(() => outboxRows(dataDir, dir).length >= 8, 50);
    first.child.kill('SIGKILL');
    await first.exited;
    // What the killed process had accepted and not yet had acknowledged.
    const atKill = outboxRows(dataDir, dir);
    expect(atKill.length).toBeGreaterThanOrEqual(8);

    // Restarted while the broker is still down: it keeps polling into the same outbox.
    const second = spawnEdge();
    const maxKilled = Math.max(...atKill.map((r) => r.seq));
    await until(() => outboxRows(dataDir, dir).some((r) => r.seq > maxKilled + 3), 50);
    await b.start();
    // Everything drains; fresh readings flow live again.
    await until(() => atKill.every((r) => b.store.has(`${gw}/${r.seq}`)) && [...b.store.values()].some((r) => r.seq > maxKilled && !r.historical));
    await second.stop();
    expect(await second.exited).toBe(0);

    // Every reading accepted by the killed run is stored: those acknowledged before, and those in its outbox.
    const runOne = new Set([...liveSeqs, ...atKill.map((r) => r.seq)]);
    const maxRunOne = Math.max(...runOne);
    expect([...runOne].sort((x, y) => x - y)).toEqual(Array.from({ length: maxRunOne }, (_, i) => i + 1));
    for (const seq of runOne) expect(b.store.has(`${gw}/${seq}`), `seq ${seq}`).toBe(true);
    // The restarted broker received each reading once, in seq order; a second copy is only ever a
    // reading the first broker already had when the edge was killed before its PUBACK.
    const afterRestart = b.deliveries.filter((d) => d.life === 1).map((d) => d.reading);
    expectIncreasing(seqsOf(afterRestart));
    for (const r of afterRestart.filter((x) => b.deliveries.some((d) => d.life === 0 && d.reading.seq === x.seq))) expect(atKill.map((k) => k.seq)).toContain(r.seq);
    // Replayed from the killed run's outbox: historical. The second run numbers above the first.
    for (const r of afterRestart.filter((x) => x.seq <= maxKilled)) expect(r.historical, `seq ${r.seq}`).toBe(true);
    const runTwo = afterRestart.filter((r) => r.seq > maxKilled);
    expect(runTwo.length).toBeGreaterThanOrEqual(4);
    expect(runTwo.filter((r) => r.historical).length).toBeGreaterThanOrEqual(3);
    // The second run's readings are contiguous: nothing it accepted went missing either.
    const two = seqsOf(runTwo);
    expect(two).toEqual(Array.from({ length: two.length }, (_, i) => two[0] + i));
    expect(outboxRows(dataDir, dir)).toEqual([]);
  });
});
