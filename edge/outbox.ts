/**
 * The outbox: readings accepted from the buses, held until the broker acknowledged them (PUBACK).
 * This issue ships the in-memory implementation; the durable one (written to disk before
 * publishing, deleted on PUBACK, replayed in order with `historical: true`) implements the same
 * interface and will run the same contract suite (DESIGN.md section 11, aedes-persistence abstract.js).
 */
export interface OutboxEntry {
  seq: number;
  topic: string;
  payload: string;
}

export interface Outbox {
  /** Stores an entry before it is published; entries are kept in seq order. */
  append(entry: OutboxEntry): Promise<void>;
  /** Removes an entry once the broker acknowledged it; unknown seqs are ignored. */
  ack(seq: number): Promise<void>;
  /** Entries not yet acknowledged, oldest first, at most `limit`. */
  pending(limit?: number): Promise<OutboxEntry[]>;
  /** Number of entries not yet acknowledged. */
  size(): number;
  close(): Promise<void>;
}

export function createMemoryOutbox(): Outbox {
  const entries = new Map<number, OutboxEntry>();
  return {
    async append(entry) {
      entries.set(entry.seq, entry);
    },
    async ack(seq) {
      entries.delete(seq);
    },
    async pending(limit = Infinity) {
      return [...entries.values()].sort((a, b) => a.seq - b.seq).slice(0, limit);
    },
    size: () => entries.size,
    async close() {
      entries.clear();
    },
  };
}
