/**
 * The InfluxDB sink's durable queue (README "InfluxDB sink"): append-only segment files of line
 * protocol in one directory, each append fsync'd before the batch's readings are acknowledged,
 * and a cursor file (segment, byte offset) rewritten and fsync'd after the server acknowledged a
 * write. Over the byte cap the oldest whole segments are dropped and their points counted.
 */
import { closeSync, existsSync, fsyncSync, mkdirSync, openSync, readdirSync, readFileSync, renameSync, unlinkSync, writeSync } from 'node:fs';
import { join } from 'node:path';

const SEGMENT_BYTES = 256 * 1024;
const NAME = /^seg-(\d{12})\.lp$/;

export interface QueuePosition { seg: number; offset: number }
export interface QueueBatch { lines: string[]; next: QueuePosition }

export interface PointQueue {
  /** Appends points (one line each) and fsyncs them. */
  append(lines: string[]): void;
  /** Up to `max` points from the cursor, oldest first, with the position after them. */
  peek(max: number): QueueBatch;
  /** The server took everything before `pos`. */
  ack(pos: QueuePosition, count: number): void;
  depth(): number;
  bytes(): number;
  dropped(): number;
  close(): void;
}

const segName = (n: number) => `seg-${String(n).padStart(12, '0')}.lp`;
const countLines = (b: Buffer, from = 0) => { let n = 0; for (let i = from; i < b.length; i++) if (b[i] === 10) n++; return n; };

export function openPointQueue(dir: string, maxBytes: number): PointQueue {
  mkdirSync(dir, { recursive: true });
  const cursorFile = join(dir, 'cursor');
  // segment number -> size in bytes and lines, oldest first
  const segs = new Map<number, { bytes: number; lines: number }>();
  for (const f of readdirSync(dir).sort()) {
    const m = NAME.exec(f);
    if (!m) continue;
    const b = readFileSync(join(dir, f));
    // A torn last line (crash mid-write) is cut off: it was never acknowledged upstream.
    const end = b.lastIndexOf(10) + 1;
    segs.set(Number(m[1]), { bytes: end, lines: countLines(b.subarray(0, end)) });
  }
  let cursor: QueuePosition = { seg: 0, offset: 0 };
  if (existsSync(cursorFile)) {
    const [s, o] = readFileSync(cursorFile, 'utf8').trim().split(' ').map(Number);
    if (Number.isInteger(s) && Number.isInteger(o)) cursor = { seg: s, offset: o };
  }
  // Segments wholly before the cursor were sent: remove them.
  for (const n of [...segs.keys()]) if (n < cursor.seg) { unlinkSync(join(dir, segName(n))); segs.delete(n); }
  let pending = 0;
  let total = 0;
  for (const [n, s] of segs) {
    total += s.bytes;
    pending += n === cursor.seg ? countLines(readFileSync(join(dir, segName(n))).subarray(cursor.offset, s.bytes)) : s.lines;
  }
  if (!segs.has(cursor.seg)) cursor = { seg: segs.size ? Math.min(...segs.keys()) : cursor.seg, offset: 0 };
  let current = segs.size ? Math.max(...segs.keys()) : cursor.seg;
  // Appends go to a fresh segment after a restart (a torn tail stays behind, never appended to).
  if (segs.size) current++;
  let fd = -1;
  let dropped = 0;

  function open(): number {
    if (fd < 0) {
      fd = openSync(join(dir, segName(current)), 'a');
      if (!segs.has(current)) segs.set(current, { bytes: 0, lines: 0 });
    }
    return fd;
  }
  function rotate(): void {
    if (fd >= 0) closeSync(fd);
    fd = -1;
    current++;
  }
  function dropOldest(): void {
    const oldest = Math.min(...segs.keys());
    const s = segs.get(oldest)!;
    const unsent = oldest === cursor.seg ? countLines(readFileSync(join(dir, segName(oldest))).subarray(cursor.offset, s.bytes)) : s.lines;
    dropped += unsent;
    pending -= unsent;
    total -= s.bytes;
    unlinkSync(join(dir, segName(oldest)));
    segs.delete(oldest);
    if (cursor.seg === oldest) saveCursor({ seg: segs.size ? Math.min(...segs.keys()) : current, offset: 0 });
  }
  function saveCursor(pos: QueuePosition): void {
    cursor = pos;
    const tmp = `${cursorFile}.tmp`;
    const f = openSync(tmp, 'w');
    writeSync(f, `${pos.seg} ${pos.offset}\n`);
    fsyncSync(f);
    closeSync(f);
    renameSync(tmp, cursorFile);
  }

  return {
    append(lines) {
      if (!lines.length) return;
      const buf = Buffer.from(lines.join('\n') + '\n');
      const f = open();
      writeSync(f, buf);
      fsyncSync(f);
      const s = segs.get(current)!;
      s.bytes += buf.length;
      s.lines += lines.length;
      total += buf.length;
      pending += lines.length;
      if (s.bytes >= SEGMENT_BYTES) rotate();
      // Drop oldest, counted (README "InfluxDB sink"): the segment being written goes last.
      while (total > maxBytes && segs.size > 0) {
        if (segs.size === 1 && fd >= 0) rotate();
        dropOldest();
      }
    },
    peek(max) {
      const lines: string[] = [];
      let pos = { ...cursor };
      while (lines.length < max) {
        const s = segs.get(pos.seg);
        if (!s) break;
        if (pos.offset >= s.bytes) {
          if (pos.seg >= current) break;
          pos = { seg: pos.seg + 1, offset: 0 };
          continue;
        }
        const b = readFileSync(join(dir, segName(pos.seg))).subarray(pos.offset, s.bytes);
        let start = 0;
        while (lines.length < max) {
          const nl = b.indexOf(10, start);
          if (nl < 0) break;
          lines.push(b.toString('utf8', start, nl));
          start = nl + 1;
        }
        pos = { seg: pos.seg, offset: pos.offset + start };
      }
      return { lines, next: pos };
    },
    ack(pos, count) {
      for (const n of [...segs.keys()]) {
        if (n < pos.seg) { unlinkSync(join(dir, segName(n))); total -= segs.get(n)!.bytes; segs.delete(n); }
      }
      pending = Math.max(0, pending - count);
      saveCursor(pos);
    },
    depth: () => pending,
    bytes: () => total,
    dropped: () => dropped,
    close() {
      if (fd >= 0) closeSync(fd);
      fd = -1;
    },
  };
}
