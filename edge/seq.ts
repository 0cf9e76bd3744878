import { randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync } from 'node:fs';
import { writeFileAtomic } from '../lib/atomic-file.ts';
import { join } from 'node:path';
import { CsError } from '../lib/errors.ts';
import { STREAM_PATTERN } from '../lib/messages.ts';
import { EdgeErrors } from './errors.ts';

/**
 * The gateway's sequence numbers, kept in `${dataDir}/seq.json`:
 * - `seq` numbers readings; with the gateway id and `stream` it is the cloud's idempotency key, so a
 *   number must never be used twice in one stream, not even after a crash. The file holds a reservation: every number
 *   below `seqReserved` may have been used. Numbers are handed out from memory and a new block is
 *   reserved (written and fsynced) before the block runs out; a clean close writes the exact next
 *   number, so a clean restart leaves no gap, and a crash skips at most one block.
 * - `stream` names this sequence: made once, when the store is created (or first opened by a
 *   version that had none), and sent with every reading. A replaced edge box or a wiped data
 *   directory starts `seq` at 1 again under a NEW stream, so the cloud's key
 *   (gateway, stream, device, seq) never mistakes its readings for the old box's.
 * - `bdSeq` numbers MQTT connection attempts (Sparkplug's birth/death sequence): the Will and the
 *   birth of one connection carry the same bdSeq, so a late Will never overrides a newer birth.
 */
export interface SeqStore {
  /** Hands out the next reading sequence number. */
  next(): number;
  /** The last number handed out (0 when none yet). */
  readonly last: number;
  /** Advances and persists the birth/death sequence for a new connection attempt. */
  nextBdSeq(): number;
  readonly bdSeq: number;
  /** This store's stream identity (random, 16 hex digits). */
  readonly stream: string;
  /** Persists the exact position (clean shutdown). */
  close(): void;
}

interface SeqFile { seqReserved: number; bdSeq: number; stream?: string }

export const SEQ_FILE = 'seq.json';

export function openSeqStore(dataDir: string, opts: { block?: number } = {}): SeqStore {
  const block = opts.block ?? 1000;
  const file = join(dataDir, SEQ_FILE);
  mkdirSync(dataDir, { recursive: true });
  const stored = read(file);
  let nextSeq = stored?.seqReserved ?? 1;
  let reserved = nextSeq;
  let bdSeq = stored?.bdSeq ?? -1;
  const stream = stored?.stream ?? newStream();
  let closed = false;

  function persist(): void {
    write(file, { seqReserved: reserved, bdSeq: Math.max(bdSeq, 0), stream });
  }

  function reserve(): void {
    reserved = nextSeq + block;
    persist();
  }
  reserve();

  return {
    next() {
      if (closed) throw new CsError(EdgeErrors.SEQ_STORE, `sequence store ${file} is closed`);
      if (nextSeq >= reserved) reserve();
      return nextSeq++;
    },
    get last() { return nextSeq - 1; },
    nextBdSeq() {
      bdSeq += 1;
      if (!closed) persist();
      return bdSeq;
    },
    get bdSeq() { return Math.max(bdSeq, 0); },
    stream,
    close() {
      if (closed) return;
      closed = true;
      reserved = nextSeq;
      persist();
    },
  };
}

function read(file: string): SeqFile | undefined {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new CsError(EdgeErrors.SEQ_STORE, `cannot read ${file}: ${(err as Error).message}`, { file });
  }
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch {
    v = undefined;
  }
  const o = v as Partial<SeqFile> | undefined;
  if (!o || !Number.isSafeInteger(o.seqReserved) || o.seqReserved! < 0 || !Number.isSafeInteger(o.bdSeq) || o.bdSeq! < 0
    || (o.stream !== undefined && !STREAM_RE.test(String(o.stream)))) {
    // Refuse rather than restart from 1: reused numbers would be dropped by the cloud as duplicates.
    throw new CsError(EdgeErrors.SEQ_STORE, `${file} is corrupt (expected {"seqReserved": n, "bdSeq": n, "stream": "hex"}); restore it or set seqReserved above the last sequence the cloud holds`, { file });
  }
  return o as SeqFile;
}

const STREAM_RE = new RegExp(STREAM_PATTERN);

function newStream(): string {
  return randomBytes(8).toString('hex');
}

/** Always either the old or the new content (lib/atomic-file.ts). */
function write(file: string, v: SeqFile): void {
  writeFileAtomic(file, JSON.stringify(v) + '\n');
}
