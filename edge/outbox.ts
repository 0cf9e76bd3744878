import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { Sqlite, type SqliteDatabase } from '../lib/sqlite.ts';
import { CsError } from '../lib/errors.ts';
import { EdgeErrors } from './errors.ts';

/**
 * The outbox: readings accepted from the buses, held until the broker acknowledged them (PUBACK).
 * A reading is *accepted* once append() resolved: the durable outbox has committed it to disk by
 * then, so a crash, a power cut or an outage of any length loses nothing accepted (MQTT.js #607,
 * thingsboard-gateway #2124). Entries leave only by ack() (the PUBACK) or by the drop policy, which
 * is explicit and counted (Telegraf #914 dropped silently), or by the retention `maxAgeMs`: an
 * entry older than the cloud accepts (its `readings.maxAgeMs`, the same default, lib/retention.ts)
 * would be refused there, so it is dropped here, counted as `expired` and logged by the edge.
 *
 * Two implementations run one contract suite (test/edge/outbox.test.ts, after aedes-persistence
 * abstract.js): `createMemoryOutbox` (tests) and `openSqliteOutbox` (the gateway's default).
 */
export interface OutboxEntry {
  seq: number;
  topic: string;
  payload: string;
}

export type DropPolicy = 'drop-oldest' | 'drop-newest';

export interface OutboxLimits {
  /** Entries held at most; default unbounded. */
  maxEntries?: number;
  /** What gives when full: the oldest entries (default) or the new one. */
  dropPolicy?: DropPolicy;
  /** Entries appended longer ago than this are dropped (counted as `expired`); default unbounded. */
  maxAgeMs?: number;
  /** The clock of `maxAgeMs` (default Date.now). */
  now?: () => number;
}

export interface OutboxStats {
  depth: number;
  appended: number;
  acked: number;
  /** Entries lost to the drop policy since open. */
  dropped: number;
  /** Entries dropped by the retention (`maxAgeMs`) since open. */
  expired: number;
  oldestSeq?: number;
  /** When the oldest entry was appended (ms since the epoch; this open's start for entries of an older outbox). */
  oldestAt?: number;
}

export interface Outbox {
  /** Stores an entry before it is published; true once stored, false when `drop-newest` refused it. */
  append(entry: OutboxEntry): Promise<boolean>;
  /** Removes an entry once the broker acknowledged it (resolves when the removal is committed); unknown seqs are ignored. */
  ack(seq: number): Promise<void>;
  /** Entries not yet acknowledged with seq above `afterSeq`, oldest first, at most `limit` (expired ones dropped first). */
  pending(limit?: number, afterSeq?: number): Promise<OutboxEntry[]>;
  /** Number of entries not yet acknowledged. */
  size(): number;
  stats(): OutboxStats;
  close(): Promise<void>;
}

/** Index of the first element with seq >= `seq` in an array sorted by seq. */
function lowerBound(list: OutboxEntry[], seq: number): number {
  let lo = 0;
  let hi = list.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (list[mid].seq < seq) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

export function createMemoryOutbox(limits: OutboxLimits = {}): Outbox {
  const max = limits.maxEntries ?? Infinity;
  const policy = limits.dropPolicy ?? 'drop-oldest';
  const maxAge = limits.maxAgeMs ?? Infinity;
  const now = limits.now ?? Date.now;
  /** Entries with the time each was appended (for the retention). */
  let list: (OutboxEntry & { at: number })[] = [];
  const counters = { appended: 0, acked: 0, dropped: 0, expired: 0 };
  function expire(): void {
    if (maxAge === Infinity) return;
    const cutoff = now() - maxAge;
    const before = list.length;
    list = list.filter((e) => e.at >= cutoff);
    counters.expired += before - list.length;
  }
  return {
    async append(entry) {
      const at = lowerBound(list, entry.seq);
      if (list[at]?.seq === entry.seq) {
        list[at] = { ...entry, at: list[at].at };
        return true;
      }
      if (list.length >= max) {
        if (policy === 'drop-newest') {
          counters.dropped += 1;
          return false;
        }
        const n = list.length - max + 1;
        list.splice(0, n);
        counters.dropped += n;
      }
      list.splice(lowerBound(list, entry.seq), 0, { seq: entry.seq, topic: entry.topic, payload: entry.payload, at: now() });
      counters.appended += 1;
      return true;
    },
    async ack(seq) {
      const at = lowerBound(list, seq);
      if (list[at]?.seq === seq) {
        list.splice(at, 1);
        counters.acked += 1;
      }
    },
    async pending(limit = Infinity, afterSeq = -Infinity) {
      expire();
      const from = lowerBound(list, Math.floor(afterSeq) + 1);
      return list.slice(from, from + Math.min(limit, list.length)).map(({ seq, topic, payload }) => ({ seq, topic, payload }));
    },
    size: () => list.length,
    stats: () => ({ depth: list.length, ...counters, ...(list.length ? { oldestSeq: list[0].seq, oldestAt: list[0].at } : {}) }),
    async close() {
      list = [];
    },
  };
}

export const OUTBOX_FILE = 'outbox.sqlite';

export interface SqliteOutboxOptions extends OutboxLimits {
  /** Directory of the database file `outbox.sqlite`. */
  dataDir: string;
  /**
   * `full` (default): every commit is fsynced, WAL included, so an accepted reading survives a power
   * cut: the case this outbox exists for is a typhoon night with failing links and power. `normal`:
   * in WAL mode a commit survives a crash of the process (SIGKILL) but the last commits may be lost
   * on a power cut; fewer flash writes (SQLite docs, "PRAGMA synchronous").
   */
  sync?: 'full' | 'normal';
}

/**
 * The durable outbox: a SQLite database in WAL mode (better-sqlite3). Appends and acks made in one
 * turn of the event loop are committed together in one transaction (group commit), so a pass over
 * many devices costs one fsync, not one per reading; append() resolves after its commit.
 */
export function openSqliteOutbox(opts: SqliteOutboxOptions): Outbox {
  mkdirSync(opts.dataDir, { recursive: true });
  const file = join(opts.dataDir, OUTBOX_FILE);
  const max = opts.maxEntries ?? Infinity;
  const policy = opts.dropPolicy ?? 'drop-oldest';
  const maxAge = opts.maxAgeMs ?? Infinity;
  const now = opts.now ?? Date.now;
  let db: SqliteDatabase;
  try {
    db = new Sqlite(file);
    db.pragma('journal_mode = WAL');
    db.pragma(`synchronous = ${opts.sync === 'normal' ? 'NORMAL' : 'FULL'}`);
    db.exec('CREATE TABLE IF NOT EXISTS outbox (seq INTEGER PRIMARY KEY, topic TEXT NOT NULL, payload TEXT NOT NULL)');
    // When each entry was appended, for the retention; entries of an older outbox count from this open.
    const columns = db.prepare('SELECT name FROM pragma_table_info(\'outbox\')').pluck().all() as string[];
    if (!columns.includes('at')) db.exec(`ALTER TABLE outbox ADD COLUMN at INTEGER NOT NULL DEFAULT ${Math.floor(now())}`);
  } catch (err) {
    throw new CsError(EdgeErrors.OUTBOX, `cannot open the outbox ${file}: ${(err as Error).message}`, { file });
  }
  const stmts = {
    insert: db.prepare('INSERT OR REPLACE INTO outbox (seq, topic, payload, at) VALUES (?, ?, ?, ?)'),
    expire: db.prepare('DELETE FROM outbox WHERE at < ?'),
    exists: db.prepare('SELECT 1 FROM outbox WHERE seq = ?').pluck(),
    del: db.prepare('DELETE FROM outbox WHERE seq = ?'),
    dropOldest: db.prepare('DELETE FROM outbox WHERE seq IN (SELECT seq FROM outbox ORDER BY seq LIMIT ?)'),
    count: db.prepare('SELECT COUNT(*) FROM outbox').pluck(),
    oldest: db.prepare('SELECT seq, at FROM outbox ORDER BY seq LIMIT 1'),
    pending: db.prepare('SELECT seq, topic, payload FROM outbox WHERE seq > ? ORDER BY seq LIMIT ?'),
  };
  let depth = stmts.count.get() as number;
  const counters = { appended: 0, acked: 0, dropped: 0, expired: 0 };
  type Op = { kind: 'append'; entry: OutboxEntry; done: (stored: boolean) => void; fail: (e: Error) => void } | { kind: 'ack'; seq: number; done: () => void };
  let batch: Op[] = [];
  let scheduled: NodeJS.Immediate | undefined;
  let closed = false;

  const commit = db.transaction((ops: Op[]) => {
    const results: boolean[] = [];
    for (const op of ops) {
      if (op.kind === 'ack') {
        const n = stmts.del.run(op.seq).changes;
        depth -= n;
        counters.acked += n;
        continue;
      }
      const { seq, topic, payload } = op.entry;
      if (stmts.exists.get(seq)) {
        stmts.insert.run(seq, topic, payload, Math.floor(now()));
        results.push(true);
        continue;
      }
      if (depth >= max) {
        if (policy === 'drop-newest') {
          counters.dropped += 1;
          results.push(false);
          continue;
        }
        const n = stmts.dropOldest.run(depth - max + 1).changes;
        depth -= n;
        counters.dropped += n;
      }
      stmts.insert.run(seq, topic, payload, Math.floor(now()));
      depth += 1;
      counters.appended += 1;
      results.push(true);
    }
    return results;
  });

  function flush(): void {
    scheduled = undefined;
    if (batch.length === 0) return;
    const ops = batch;
    batch = [];
    const appends = ops.filter((o): o is Extract<Op, { kind: 'append' }> => o.kind === 'append');
    let results: boolean[];
    try {
      results = commit(ops);
    } catch (err) {
      // Nothing of the batch is committed: its readings were not accepted.
      depth = stmts.count.get() as number;
      const e = new CsError(EdgeErrors.OUTBOX, `outbox write failed: ${(err as Error).message}`, { file });
      for (const a of appends) a.fail(e);
      // An ack that failed to commit leaves its entry for a later resend; the cloud stores it once.
      for (const o of ops) if (o.kind === 'ack') o.done();
      return;
    }
    appends.forEach((a, i) => a.done(results[i]));
    for (const o of ops) if (o.kind === 'ack') o.done();
  }

  function schedule(): void {
    scheduled ??= setImmediate(flush);
  }

  function assertOpen(): void {
    if (closed) throw new CsError(EdgeErrors.OUTBOX, `outbox ${file} is closed`, { file });
  }

  return {
    append(entry) {
      assertOpen();
      return new Promise<boolean>((done, fail) => {
        batch.push({ kind: 'append', entry: { seq: entry.seq, topic: entry.topic, payload: entry.payload }, done, fail });
        schedule();
      });
    },
    ack(seq) {
      if (closed) return Promise.resolve();
      // Resolves once committed, with the other acks and appends of this turn (one fsync for all).
      return new Promise<void>((done) => {
        batch.push({ kind: 'ack', seq, done });
        schedule();
      });
    },
    async pending(limit = 1_000_000, afterSeq = -1) {
      assertOpen();
      flush();
      if (maxAge !== Infinity) {
        const n = stmts.expire.run(Math.floor(now() - maxAge)).changes;
        depth -= n;
        counters.expired += n;
      }
      const lim = Number.isFinite(limit) ? limit : 1_000_000;
      return stmts.pending.all(Number.isFinite(afterSeq) ? afterSeq : -1, lim) as OutboxEntry[];
    },
    size() {
      if (!closed) flush();
      return depth;
    },
    stats() {
      if (!closed) flush();
      const oldest = closed ? undefined : (stmts.oldest.get() as { seq: number; at: number } | undefined);
      return { depth, ...counters, ...(oldest ? { oldestSeq: oldest.seq, oldestAt: oldest.at } : {}) };
    },
    async close() {
      if (closed) return;
      if (scheduled) clearImmediate(scheduled);
      flush();
      closed = true;
      db.close();
    },
  };
}
