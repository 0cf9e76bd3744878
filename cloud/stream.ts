/**
 * The cloud's Redis Streams consumer: the hand-off of readings and edge alarms at scale (README "Cluster").
 *
 * Every broker appends the readings and edge alarms its clients publish to one stream (gateway/stream.ts);
 * cloud workers read it through one consumer group, so each entry goes to one worker:
 *
 * - at least once: an entry is acknowledged (XACK) only after `handle` resolved true (the
 *   reading stored, or rejected for good); the cloud is idempotent on (gateway, seq), so a
 *   redelivery stores nothing twice;
 * - a worker that dies or hangs leaves its entries pending; every worker periodically
 *   takes over entries pending longer than `claimIdleMs` with XAUTOCLAIM (Redis 6.2+);
 * - on start a worker first handles its own pending entries (a restart under the same
 *   consumer name resumes where it stopped).
 *
 * Entry fields: `gw`, `topic`, `payload` (raw bytes), `broker`, `at` (gateway/stream.ts); `handle`
 * tells a reading (`up/+`) from an edge alarm (`alarm/+`) by the topic.
 * One loop, no timers: a blocking XREADGROUP of at most `blockMs`, then a claim when due.
 */
import { Redis } from 'ioredis';
import { CsError } from '../lib/errors.ts';
import type { Logger } from '../lib/log.ts';
import { parseTopic } from '../lib/topics.ts';

export interface StreamSourceOptions {
  /** `redis://host:port/db`. */
  url: string;
  /** Full key of the stream, e.g. `cs:readings` (the brokers' redis.keyPrefix + stream.key). */
  stream: string;
  /** Consumer group shared by every cloud worker, e.g. `cloud`. */
  group: string;
  /** This worker's name, unique and stable across its restarts (e.g. the host name). */
  consumer: string;
  /** Entries read per call; default 100. */
  batch?: number;
  /** Longest wait of one blocking read, ms; default 1000 (also bounds how late a claim runs). */
  blockMs?: number;
  /** An entry pending this long on any worker is taken over, ms; default 30000. */
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
  logger: Logger;
  now?: () => number;
}

export interface StreamConsumerStats {
  handled: number;
  acked: number;
  /** Entries left pending because handle failed. */
  failed: number;
  /** Entries taken over from other (dead or stuck) workers. */
  claimed: number;
  /** Entries without the expected fields: acknowledged and dropped. */
  malformed: number;
}

export interface StreamConsumer {
  start(): Promise<void>;
  /** Finishes the entry in hand, acknowledges it, and closes both Redis connections. */
  stop(): Promise<void>;
  stats(): StreamConsumerStats;
}

export const StreamErrors = {
  /** Redis cannot be reached, or the group cannot be created, at start. */
  UNAVAILABLE: 'CS_CLOUD_STREAM_UNAVAILABLE',
} as const;

type RawEntry = [id: Buffer, fields: Buffer[]];

export function createStreamConsumer(deps: StreamConsumerDeps): StreamConsumer {
  const o = deps.options;
  const log = deps.logger.child({ stream: o.stream, group: o.group, consumer: o.consumer });
  const now = deps.now ?? Date.now;
  const batch = o.batch ?? 100;
  const blockMs = o.blockMs ?? 1000;
  const claimIdleMs = o.claimIdleMs ?? 30_000;
  const claimEveryMs = o.claimEveryMs ?? Math.max(1, Math.floor(claimIdleMs / 2));
  const stats: StreamConsumerStats = { handled: 0, acked: 0, failed: 0, claimed: 0, malformed: 0 };
  /** Blocking reads on one connection, everything else on the other: stop() can cut a read short. */
  let reader: Redis | undefined;
  let writer: Redis | undefined;
  let stopping = false;
  let loop: Promise<void> | undefined;
  let nextClaimAt = 0;
  let claimCursor = '0-0';

  // ---- steps -------------------------------------------------------------------------------

  async function ensureGroup(r: Redis): Promise<void> {
    try {
      await r.xgroup('CREATE', o.stream, o.group, '0', 'MKSTREAM');
      log.info('consumer group created');
    } catch (err) {
      if (!String((err as Error).message).startsWith('BUSYGROUP')) throw err;
    }
  }

  function decode(raw: RawEntry): StreamEntry | undefined {
    const [id, fields] = raw;
    const map = new Map<string, Buffer>();
    for (let i = 0; i + 1 < (fields?.length ?? 0); i += 2) map.set(fields[i].toString(), fields[i + 1]);
    const gw = map.get('gw')?.toString();
    const topic = map.get('topic')?.toString();
    const payload = map.get('payload');
    if (!gw || !topic || !payload) return undefined;
    return { id: id.toString(), gateway: gw, topic, payload };
  }

  /**
   * Hands the entries over in stream order, readings without waiting for each other (the cloud
   * stores them in one batch, docs/architecture.md#ingest); an entry of another kind (an edge
   * alarm) waits for those before it. The good ones are acknowledged in one XACK once all settled.
   */
  async function handleAll(raws: RawEntry[]): Promise<void> {
    const ack: string[] = [];
    const inHand: Promise<void>[] = [];
    for (const raw of raws) {
      // XAUTOCLAIM answers deleted entries (trimmed away) with empty fields.
      const entry = decode(raw);
      if (!entry) {
        stats.malformed++;
        log.warn({ id: raw[0].toString() }, 'stream entry without gw, topic or payload: dropped');
        ack.push(raw[0].toString());
        continue;
      }
      const reading = parseTopic(entry.topic)?.kind === 'up';
      if (!reading) await Promise.all(inHand);
      const p = handleOne(entry, ack);
      if (reading) inHand.push(p);
      else await p;
    }
    await Promise.all(inHand);
    if (ack.length) {
      await writer!.xack(o.stream, o.group, ...ack);
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

  async function readOwnPending(): Promise<void> {
    for (let after = '0'; !stopping;) {
      const res = await writer!.callBuffer('XREADGROUP', 'GROUP', o.group, o.consumer, 'COUNT', String(batch), 'STREAMS', o.stream, after) as [Buffer, RawEntry[]][] | null;
      const entries = res?.[0]?.[1] ?? [];
      if (entries.length === 0) return;
      await handleAll(entries);
      after = entries[entries.length - 1][0].toString();
    }
  }

  async function claimStale(): Promise<void> {
    // XAUTOCLAIM key group consumer min-idle start COUNT n: entries idle longer than min-idle become ours.
    const res = await writer!.callBuffer('XAUTOCLAIM', o.stream, o.group, o.consumer, String(claimIdleMs), claimCursor, 'COUNT', String(batch)) as [Buffer, RawEntry[], ...unknown[]];
    claimCursor = res[0].toString();
    const entries = (res[1] ?? []).filter((e) => e && e[0]);
    if (entries.length) {
      stats.claimed += entries.length;
      log.warn({ count: entries.length }, 'took over stream entries pending on another worker');
      await handleAll(entries);
    }
  }

  async function readNew(): Promise<void> {
    const res = await reader!.callBuffer('XREADGROUP', 'GROUP', o.group, o.consumer, 'COUNT', String(batch), 'BLOCK', String(blockMs), 'STREAMS', o.stream, '>') as [Buffer, RawEntry[]][] | null;
    const entries = res?.[0]?.[1] ?? [];
    if (entries.length) await handleAll(entries);
  }

  async function run(): Promise<void> {
    let backoff = 100;
    while (!stopping) {
      try {
        if (now() >= nextClaimAt) {
          nextClaimAt = now() + claimEveryMs;
          await claimStale();
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

  return {
    async start() {
      const opts = { maxRetriesPerRequest: null, lazyConnect: true } as const;
      reader = new Redis(o.url, opts);
      writer = new Redis(o.url, opts);
      for (const r of [reader, writer]) r.on('error', (err) => { if (!stopping) log.warn({ err: err.message }, 'redis connection error'); });
      try {
        await Promise.all([reader.connect(), writer.connect()]);
        await ensureGroup(writer);
        await readOwnPending();
      } catch (err) {
        reader.disconnect();
        writer.disconnect();
        reader = writer = undefined;
        throw new CsError(StreamErrors.UNAVAILABLE, `cannot consume redis stream ${o.stream} at ${o.url}: ${(err as Error).message}`);
      }
      log.info({ claimIdleMs, batch }, 'consuming readings stream');
      loop = run();
    },
    async stop() {
      if (!reader || stopping) return loop;
      stopping = true;
      // Cuts the blocking read short; the entry in hand still finishes and is acknowledged.
      reader.disconnect();
      await loop;
      await writer!.quit().catch(() => writer!.disconnect());
      reader = writer = undefined;
    },
    stats: () => ({ ...stats }),
  };
}
