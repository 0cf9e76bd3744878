/**
 * The cloud's Redis Streams consumer: the hand-off of readings and edge alarms at scale (README "Cluster").
 *
 * Every broker appends the readings and edge alarms its clients publish to the stream partition of
 * their gateway (gateway/stream.ts, lib/partition.ts); cloud workers read through one consumer
 * group, and each partition is read by one worker at a time, the one holding its lease
 * (cloud/stream-leases.ts, docs/architecture.md#partitions): one device, one rule state.
 *
 * - at least once: an entry is acknowledged (XACK) only after `handle` resolved true (the
 *   reading stored, or rejected for good); the cloud is idempotent on (gateway, seq), so a
 *   redelivery stores nothing twice;
 * - a worker that takes a partition (at start, on a join, or after its owner died or left)
 *   first takes over every entry pending on it (XAUTOCLAIM from 0, any idle time), in order,
 *   before reading new ones; entries whose handling failed are retried after `claimIdleMs`;
 * - `moved(partition, owned)` is told when a partition comes or goes, between batches, so the
 *   rule state of its devices is dropped (docs/architecture.md#partitions).
 *
 * Entry fields: `gw`, `topic`, `payload` (raw bytes), `broker`, `at` (gateway/stream.ts); `handle`
 * tells a reading (`up/+`) from an edge alarm (`alarm/+`) by the topic.
 * One loop reads (a blocking XREADGROUP over the partitions held, of at most `blockMs`); a timer
 * renews the leases every leaseMs/3.
 */
import { Redis } from 'ioredis';
import { CsError } from '../lib/errors.ts';
import type { Logger } from '../lib/log.ts';
import { agreePartitions, partitionKey } from '../lib/partition.ts';
import { parseTopic } from '../lib/topics.ts';
import { createPartitionLeases, type PartitionLeases } from './stream-leases.ts';

export interface StreamSourceOptions {
  /** `redis://host:port/db`. */
  url: string;
  /** Full key of the stream, e.g. `cs:readings` (the brokers' redis.keyPrefix + stream.key). */
  stream: string;
  /** Consumer group shared by every cloud worker, e.g. `cloud`. */
  group: string;
  /** This worker's name, unique and stable across its restarts (e.g. the host name). */
  consumer: string;
  /** Partitions by gateway, as on the brokers; default 1. */
  partitions?: number;
  /** Lease of a partition unrenewed, ms; default 10000: a dead worker's partitions move after about this. */
  leaseMs?: number;
  /** Entries read per call; default 1000 (as many as one transaction of the group commit takes). */
  batch?: number;
  /** Longest wait of one blocking read, ms; default 1000 (also bounds how late a partition is picked up). */
  blockMs?: number;
  /** An entry whose handling failed is retried once pending this long, ms; default 30000. */
  claimIdleMs?: number;
  /** How often to look for such entries, ms; default claimIdleMs / 2. */
  claimEveryMs?: number;
}

export interface StreamEntry {
  id: string;
  gateway: string;
  topic: string;
  payload: Buffer;
}

export interface StreamConsumerDeps {
  options: StreamSourceOptions;
  /** Resolves true when the entry may be acknowledged; false or a rejection leaves it pending. */
  handle(entry: StreamEntry): Promise<boolean>;
  /** A partition came (owned) or went: called between batches, before its first entry is handled. */
  moved?(partition: number, owned: boolean): Promise<void> | void;
  /** A batch of a partition was handled, before it is acknowledged; `fence` is the lease's (cloud/stream-leases.ts). */
  handled?(partition: number, fence: number): Promise<void>;
  logger: Logger;
  now?: () => number;
}

export interface StreamConsumerStats {
  handled: number;
  acked: number;
  /** Entries left pending because handle failed. */
  failed: number;
  /** Entries taken over from other (dead, stuck or departed) workers, or retried. */
  claimed: number;
  /** Entries without the expected fields: acknowledged and dropped. */
  malformed: number;
  /** Partitions this worker reads now. */
  partitions: number[];
}

export interface StreamConsumer {
  start(): Promise<void>;
  /** Finishes the batch in hand, acknowledges it, releases its partitions and closes both Redis connections. */
  stop(): Promise<void>;
  stats(): StreamConsumerStats;
}

export const StreamErrors = {
  /** Redis cannot be reached, or the group cannot be created, at start. */
  UNAVAILABLE: 'CS_CLOUD_STREAM_UNAVAILABLE',
  /** The stream was started with another partition count (docs/architecture.md#partitions). */
  PARTITIONS: 'CS_CLOUD_STREAM_PARTITIONS',
} as const;

type RawEntry = [id: Buffer, fields: Buffer[]];
const GW = Buffer.from('gw'), TOPIC = Buffer.from('topic'), PAYLOAD = Buffer.from('payload');

export function createStreamConsumer(deps: StreamConsumerDeps): StreamConsumer {
  const o = deps.options;
  const log = deps.logger.child({ stream: o.stream, group: o.group, consumer: o.consumer });
  const now = deps.now ?? Date.now;
  const partitions = o.partitions ?? 1;
  const leaseMs = o.leaseMs ?? 10_000;
  const batch = o.batch ?? 1000;
  const blockMs = o.blockMs ?? 1000;
  const claimIdleMs = o.claimIdleMs ?? 30_000;
  const claimEveryMs = o.claimEveryMs ?? Math.max(1, Math.floor(claimIdleMs / 2));
  const stats: Omit<StreamConsumerStats, 'partitions'> = { handled: 0, acked: 0, failed: 0, claimed: 0, malformed: 0 };
  /** Blocking reads on one connection, everything else on the other: stop() can cut a read short. */
  let reader: Redis | undefined;
  let writer: Redis | undefined;
  let leases: PartitionLeases | undefined;
  let ticker: NodeJS.Timeout | undefined;
  let ticking: Promise<void> | undefined;
  let stopping = false;
  let loop: Promise<void> | undefined;
  let nextClaimAt = 0;
  /** Partitions taken over (pending entries handled) and read now. */
  const ready = new Set<number>();
  const groups = new Set<number>();
  const keyOf = (p: number) => partitionKey(o.stream, p, partitions);
  const partitionOfKey = new Map<string, number>();
  for (let p = 0; p < partitions; p++) partitionOfKey.set(keyOf(p), p);

  // ---- steps -------------------------------------------------------------------------------

  async function ensureGroup(p: number): Promise<void> {
    if (groups.has(p)) return;
    try {
      await writer!.xgroup('CREATE', keyOf(p), o.group, '0', 'MKSTREAM');
      log.info({ partition: p }, 'consumer group created');
    } catch (err) {
      if (!String((err as Error).message).startsWith('BUSYGROUP')) throw err;
    }
    groups.add(p);
  }

  function decode(raw: RawEntry): StreamEntry | undefined {
    const [id, fields] = raw;
    // The three fields by name (the last of a repeated one wins), without a map per entry.
    let gwRaw: Buffer | undefined, topicRaw: Buffer | undefined, payload: Buffer | undefined;
    for (let i = 0; i + 1 < (fields?.length ?? 0); i += 2) {
      const name = fields[i];
      if (name.equals(GW)) gwRaw = fields[i + 1];
      else if (name.equals(TOPIC)) topicRaw = fields[i + 1];
      else if (name.equals(PAYLOAD)) payload = fields[i + 1];
    }
    const gw = gwRaw?.toString();
    const topic = topicRaw?.toString();
    if (!gw || !topic || !payload) return undefined;
    return { id: id.toString(), gateway: gw, topic, payload };
  }

  /**
   * Hands the entries of one partition over in stream order, readings without waiting for each
   * other (the cloud stores them in one batch, docs/architecture.md#ingest); an entry of another
   * kind (an edge alarm) waits for those before it. The good ones are acknowledged in one XACK once
   * all settled. A partition no longer held is left alone: its entries stay pending for the next owner.
   */
  async function handleAll(p: number, raws: RawEntry[]): Promise<void> {
    if (!leases!.held(p)) return;
    const ack: string[] = [];
    const inHand: Promise<void>[] = [];
    for (const raw of raws) {
      // XAUTOCLAIM answers deleted entries (trimmed away) with empty fields.
      const entry = decode(raw);
      if (!entry) {
        stats.malformed++;
        log.warn({ id: raw[0].toString(), partition: p }, 'stream entry without gw, topic or payload: dropped');
        ack.push(raw[0].toString());
        continue;
      }
      const reading = parseTopic(entry.topic)?.kind === 'up';
      if (!reading) await Promise.all(inHand);
      const q = handleOne(entry, ack);
      if (reading) inHand.push(q);
      else await q;
    }
    await Promise.all(inHand);
    const fence = leases!.fence(p);
    if (deps.handled && fence !== undefined) await deps.handled(p, fence).catch((err) => log.warn({ err, partition: p }, 'after-batch step failed'));
    if (ack.length) {
      await writer!.xack(keyOf(p), o.group, ...ack);
      stats.acked += ack.length;
    }
  }

  async function handleOne(entry: StreamEntry, ack: string[]): Promise<void> {
    let ok = false;
    try {
      ok = await deps.handle(entry);
    } catch (err) {
      log.error({ err, id: entry.id, gateway: entry.gateway }, 'stream entry handling failed');
    }
    stats.handled++;
    if (ok) ack.push(entry.id);
    else stats.failed++; // stays pending: a later claim retries it
  }

  /** XAUTOCLAIM key group consumer min-idle start COUNT n: entries idle longer than min-idle become ours, in id order. */
  async function claim(p: number, minIdle: number, all: boolean): Promise<void> {
    let cursor = '0-0';
    do {
      const res = await writer!.callBuffer('XAUTOCLAIM', keyOf(p), o.group, o.consumer, String(minIdle), cursor, 'COUNT', String(batch)) as [Buffer, RawEntry[], ...unknown[]];
      cursor = res[0].toString();
      const entries = (res[1] ?? []).filter((e) => e && e[0]);
      if (entries.length) {
        stats.claimed += entries.length;
        log.warn({ count: entries.length, partition: p }, 'took over pending stream entries');
        await handleAll(p, entries);
      }
    } while (all && cursor !== '0-0' && !stopping && leases!.held(p));
  }

  /** Follows the leases between batches: releases what moves away, takes over what came. */
  async function follow(): Promise<void> {
    for (const p of await leases!.settle()) {
      ready.delete(p);
      await deps.moved?.(p, false);
    }
    const owned = leases!.owned();
    for (const p of [...ready]) {
      if (owned.includes(p)) continue;
      ready.delete(p);
      await deps.moved?.(p, false);
    }
    for (const p of owned) {
      if (ready.has(p) || stopping) continue;
      await ensureGroup(p);
      await deps.moved?.(p, true);
      await claim(p, 0, true);
      if (leases!.held(p)) ready.add(p);
    }
  }

  async function readNew(): Promise<void> {
    const keys = [...ready].map(keyOf);
    if (keys.length === 0) {
      await new Promise((r) => setTimeout(r, Math.min(blockMs, 200)));
      return;
    }
    const res = await reader!.callBuffer('XREADGROUP', 'GROUP', o.group, o.consumer, 'COUNT', String(batch), 'BLOCK', String(blockMs), 'STREAMS', ...keys, ...keys.map(() => '>')) as [Buffer, RawEntry[]][] | null;
    for (const [key, entries] of res ?? []) {
      const p = partitionOfKey.get(key.toString());
      if (p !== undefined && entries.length) await handleAll(p, entries);
    }
  }

  async function run(): Promise<void> {
    let backoff = 100;
    while (!stopping) {
      try {
        await follow();
        if (now() >= nextClaimAt) {
          nextClaimAt = now() + claimEveryMs;
          for (const p of ready) await claim(p, claimIdleMs, false);
          if (stopping) break;
        }
        await readNew();
        backoff = 100;
      } catch (err) {
        if (stopping) break;
        log.error({ err: (err as Error).message }, 'stream read failed; retrying');
        await new Promise((r) => setTimeout(r, backoff));
        backoff = Math.min(backoff * 2, 5000);
      }
    }
  }

  function tick(): void {
    if (ticking || !leases) return;
    ticking = leases.tick()
      .catch((err) => { if (!stopping) log.warn({ err: (err as Error).message }, 'partition leases not renewed; retrying'); })
      .finally(() => { ticking = undefined; });
  }

  return {
    async start() {
      const opts = { maxRetriesPerRequest: null, lazyConnect: true } as const;
      reader = new Redis(o.url, opts);
      writer = new Redis(o.url, opts);
      for (const r of [reader, writer]) r.on('error', (err) => { if (!stopping) log.warn({ err: err.message }, 'redis connection error'); });
      let problem: string | undefined;
      try {
        await Promise.all([reader.connect(), writer.connect()]);
        problem = await agreePartitions(writer, o.stream, partitions);
        if (!problem) {
          leases = createPartitionLeases({ redis: writer, stream: o.stream, consumer: o.consumer, partitions, leaseMs, logger: log, now });
          await leases.tick();
          await follow();
        }
      } catch (err) {
        problem = undefined;
        reader.disconnect();
        writer.disconnect();
        reader = writer = undefined;
        throw new CsError(StreamErrors.UNAVAILABLE, `cannot consume redis stream ${o.stream} at ${o.url}: ${(err as Error).message}`);
      }
      if (problem) {
        reader.disconnect();
        writer.disconnect();
        reader = writer = undefined;
        throw new CsError(StreamErrors.PARTITIONS, problem);
      }
      ticker = setInterval(tick, Math.max(100, Math.floor(leaseMs / 3)));
      log.info({ claimIdleMs, batch, partitions, leaseMs, owned: leases!.owned() }, 'consuming readings stream');
      loop = run();
    },
    async stop() {
      if (!reader || stopping) return loop;
      stopping = true;
      clearInterval(ticker);
      // Cuts the blocking read short; the batch in hand still finishes and is acknowledged.
      reader.disconnect();
      await loop;
      await ticking;
      await leases?.leave();
      await writer!.quit().catch(() => writer!.disconnect());
      reader = writer = undefined;
    },
    stats: () => ({ ...stats, partitions: [...ready].sort((a, b) => a - b) }),
  };
}
