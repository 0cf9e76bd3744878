import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { openSeqStore, SEQ_FILE } from '../../edge/seq.ts';
import { EdgeErrors } from '../../edge/errors.ts';

let dir: string;
beforeEach(() => { dir = mkdtempSync(join(tmpdir(), 'cs-seq-')); });
afterEach(() => { rmSync(dir, { recursive: true, force: true }); });

describe('sequence store', () => {
  it('continues exactly where a clean close left off', () => {
    const a = openSeqStore(dir, { block: 10 });
    const first = [a.next(), a.next(), a.next()];
    expect(first).toEqual([1, 2, 3]);
    a.close();
    const b = openSeqStore(dir, { block: 10 });
    expect(b.next()).toBe(4);
    b.close();
  });

  it('never reuses a number after a crash: the file always reserves ahead of what was handed out', () => {
    const a = openSeqStore(dir, { block: 10 });
    let last = 0;
    for (let i = 0; i < 25; i++) {
      last = a.next();
      // What a crash right now would leave on disk.
      const onDisk = JSON.parse(readFileSync(join(dir, SEQ_FILE), 'utf8')) as { seqReserved: number };
      expect(onDisk.seqReserved).toBeGreaterThan(last);
    }
    // Crash: no close(). A new store starts above every number handed out.
    const b = openSeqStore(dir, { block: 10 });
    expect(b.next()).toBeGreaterThan(last);
    b.close();
  });

  it('advances and persists the birth sequence per connection attempt', () => {
    const a = openSeqStore(dir);
    expect(a.nextBdSeq()).toBe(0);
    expect(a.nextBdSeq()).toBe(1);
    const b = openSeqStore(dir);
    expect(b.nextBdSeq()).toBe(2);
    b.close();
  });

  it('refuses a corrupt file rather than starting again from 1', () => {
    writeFileSync(join(dir, SEQ_FILE), '{"seqReserved": "many"}');
    expect(() => openSeqStore(dir)).toThrow(expect.objectContaining({ code: EdgeErrors.SEQ_STORE }));
  });

  it('names its stream once: a reopened store keeps it, a new data directory gets a new one', () => {
    const a = openSeqStore(dir);
    expect(a.stream).toMatch(/^[0-9a-f]{16}$/);
    a.close();
    const b = openSeqStore(dir);
    expect(b.stream).toBe(a.stream);
    b.close();
    const other = mkdtempSync(join(tmpdir(), 'cs-seq-'));
    try {
      const c = openSeqStore(other);
      expect(c.stream).not.toBe(a.stream);
      c.close();
    } finally {
      rmSync(other, { recursive: true, force: true });
    }
  });

  it('gives a store written before streams existed a stream and keeps its position', () => {
    writeFileSync(join(dir, SEQ_FILE), '{"seqReserved": 5000, "bdSeq": 3}');
    const a = openSeqStore(dir);
    expect(a.stream).toMatch(/^[0-9a-f]{16}$/);
    expect(a.next()).toBe(5000);
    a.close();
    expect(JSON.parse(readFileSync(join(dir, SEQ_FILE), 'utf8'))).toMatchObject({ seqReserved: 5001, bdSeq: 3, stream: a.stream });
  });
});
