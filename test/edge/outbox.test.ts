import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { createMemoryOutbox, openSqliteOutbox, type Outbox, type OutboxLimits } from '../../edge/outbox.ts';

/**
 * The contract every outbox implementation runs (after aedes-persistence abstract.js).
 */
const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});
function tempDir(): string {
  const d = mkdtempSync(join(tmpdir(), 'cs-outbox-'));
  dirs.push(d);
  return d;
}

const implementations: [string, (limits?: OutboxLimits) => Promise<Outbox>][] = [
  ['memory', async (limits) => createMemoryOutbox(limits)],
  ['sqlite', async (limits) => openSqliteOutbox({ dataDir: tempDir(), ...limits })],
];

const entry = (seq: number) => ({ seq, topic: `cs/v1/gw/up/d${seq}`, payload: JSON.stringify({ seq }) });

for (const [name, make] of implementations) {
  describe(`outbox contract: ${name}`, () => {
    it('keeps appended entries until they are acknowledged', async () => {
      const box = await make();
      expect(await box.append(entry(1))).toBe(true);
      await box.append(entry(2));
      expect(box.size()).toBe(2);
      await box.ack(1);
      expect(await box.pending()).toEqual([entry(2)]);
      expect(box.stats()).toMatchObject({ depth: 1, appended: 2, acked: 1, dropped: 0, oldestSeq: 2 });
      await box.close();
    });

    it('hands pending entries out oldest first, however they were appended and acknowledged', async () => {
      const box = await make();
      for (const seq of [5, 3, 9, 4]) await box.append(entry(seq));
      await box.ack(9);
      expect((await box.pending()).map((e) => e.seq)).toEqual([3, 4, 5]);
      expect((await box.pending(2)).map((e) => e.seq)).toEqual([3, 4]);
      expect((await box.pending(10, 3)).map((e) => e.seq)).toEqual([4, 5]);
      await box.close();
    });

    it('ignores an acknowledgement of an unknown or already acknowledged entry', async () => {
      const box = await make();
      await box.append(entry(1));
      await box.ack(1);
      await box.ack(1);
      await box.ack(42);
      expect(box.size()).toBe(0);
      expect(await box.pending()).toEqual([]);
      await box.close();
    });

    it('drops the oldest entries when full under drop-oldest, and counts them', async () => {
      const box = await make({ maxEntries: 3, dropPolicy: 'drop-oldest' });
      for (let seq = 1; seq <= 5; seq++) expect(await box.append(entry(seq))).toBe(true);
      expect((await box.pending()).map((e) => e.seq)).toEqual([3, 4, 5]);
      expect(box.stats()).toMatchObject({ depth: 3, dropped: 2 });
      await box.close();
    });

    it('refuses new entries when full under drop-newest, keeps the backlog intact and counts the refusals', async () => {
      const box = await make({ maxEntries: 3, dropPolicy: 'drop-newest' });
      const stored = [];
      for (let seq = 1; seq <= 5; seq++) stored.push(await box.append(entry(seq)));
      expect(stored).toEqual([true, true, true, false, false]);
      expect((await box.pending()).map((e) => e.seq)).toEqual([1, 2, 3]);
      expect(box.stats()).toMatchObject({ depth: 3, dropped: 2 });
      // Room again once the broker acknowledged something.
      await box.ack(1);
      expect(await box.append(entry(6))).toBe(true);
      await box.close();
    });

    it('an entry held longer than the retention (maxAgeMs) is dropped and counted as expired, not replayed for the cloud to refuse as ts-too-old', async () => {
      let clock = 1_000_000;
      const box = await make({ maxAgeMs: 60_000, now: () => clock });
      await box.append(entry(1));
      await box.append(entry(2));
      clock += 30_000;
      await box.append(entry(3));
      clock += 30_001;
      expect((await box.pending()).map((e) => e.seq)).toEqual([3]);
      expect(box.stats()).toMatchObject({ depth: 1, expired: 2, dropped: 0 });
      await box.close();
    });

    it('appends many entries of one turn together and resolves each', async () => {
      const box = await make();
      const results = await Promise.all(Array.from({ length: 200 }, (_, i) => box.append(entry(i + 1))));
      expect(results.every(Boolean)).toBe(true);
      expect(box.size()).toBe(200);
      expect((await box.pending(1000)).map((e) => e.seq)).toEqual(Array.from({ length: 200 }, (_, i) => i + 1));
      await box.close();
    });
  });
}

describe('sqlite outbox', () => {
  it('keeps unacknowledged entries across a reopen, in order', async () => {
    const dataDir = tempDir();
    const a = openSqliteOutbox({ dataDir });
    for (let seq = 1; seq <= 5; seq++) await a.append(entry(seq));
    await a.ack(2);
    await a.close();
    const b = openSqliteOutbox({ dataDir });
    expect(b.size()).toBe(4);
    expect((await b.pending()).map((e) => e.seq)).toEqual([1, 3, 4, 5]);
    await b.close();
  });

  it('keeps the time each entry was appended across a reopen, and an outbox of before the retention counts its entries from the reopen', async () => {
    const dataDir = tempDir();
    let clock = 5_000_000;
    const a = openSqliteOutbox({ dataDir, now: () => clock });
    await a.append(entry(1));
    await a.close();
    clock += 90_000;
    const b = openSqliteOutbox({ dataDir, maxAgeMs: 60_000, now: () => clock });
    expect((await b.pending()).map((e) => e.seq)).toEqual([]);
    expect(b.stats()).toMatchObject({ depth: 0, expired: 1 });
    await b.close();
    // A file without the column (an edge of an earlier release): its entries count from this open.
    const old = join(tempDir(), 'x');
    const { Sqlite } = await import('../../lib/sqlite.ts');
    const { mkdirSync } = await import('node:fs');
    mkdirSync(old, { recursive: true });
    const raw = new Sqlite(join(old, 'outbox.sqlite'));
    raw.exec('CREATE TABLE outbox (seq INTEGER PRIMARY KEY, topic TEXT NOT NULL, payload TEXT NOT NULL)');
    raw.prepare('INSERT INTO outbox (seq, topic, payload) VALUES (?, ?, ?)').run(7, 't', '{}');
    raw.close();
    const c = openSqliteOutbox({ dataDir: old, maxAgeMs: 60_000, now: () => clock });
    expect((await c.pending()).map((e) => e.seq)).toEqual([7]);
    await c.close();
  });
});
