/**
 * The hand-off of readings and edge alarms to the cloud at scale. Aedes has no shared subscriptions
 * (moscajs/aedes #228), so each broker appends the readings and edge alarms (`up/+`, `alarm/+`,
 * in publish order) its own clients publish to
 * one Redis Stream, and cloud workers consume it through a consumer group
 * (cloud/stream.ts). The append runs in the broker's onPublishAuthorized hook, which
 * completes before the PUBACK (docs/architecture.md#platform-notes): a reading is acknowledged to its gateway
 * only once Redis holds it. When Redis refuses it, the publish is refused, the
 * connection is closed and the edge resends it from its outbox.
 *
 * Partitions (docs/architecture.md#partitions): with `partitions` > 1 a gateway's entries go to
 * `key:pN`, N a stable hash of the gateway id (lib/partition.ts), so one worker judges them all.
 *
 * Entry fields: `gw` (gateway id), `topic` (its kind tells a reading from an alarm), `payload` (the raw bytes), `broker` (the
 * appending broker's id), `at` (receive time, ms since the epoch).
 *
 * Appends are sent together: what arrives within one turn of the event loop goes in one script call
 * (EVALSHA of APPEND, up to MAX_BATCH entries, in arrival order), which XADDs each entry as before; each
 * append resolves when the call returned, and all of a failed call are refused. One command per message
 * (ioredis builds each, Redis dispatches each) was a fifth of the broker's CPU under the ingest bench.
 */
import { Redis } from 'ioredis';
import { CsError } from '../lib/errors.ts';
import { agreePartitions, partitionKey, partitionOf } from '../lib/partition.ts';
import { parseTopic } from '../lib/topics.ts';
import type { Logger } from '../lib/log.ts';
import { GatewayErrors } from './errors.ts';
import { DEFAULT_STREAM_MAXLEN } from './redis-defaults.ts';

export interface StreamAppenderOptions {
  url: string;
  /** Full key of the stream (the key prefix included), e.g. `cs:readings`. */
  key: string;
  /** Approximate cap on the stream's length (XADD MAXLEN ~); 0 = uncapped. Default 1,000,000. */
  maxLen?: number;
  /** Partitions of the stream (lib/partition.ts); default 1 (the key itself). Every broker and worker must agree. */
  partitions?: number;
  /** Id of this broker, written in each entry. */
  brokerId: string;
  now?: () => number;
  logger: Logger;
}

export interface StreamAppender {
  start(): Promise<void>;
  stop(): Promise<void>;
  /** Appends a reading or an edge alarm; resolves once Redis has it. Other topics resolve at once (not appended). */
  append(topic: string, payload: Buffer): Promise<boolean>;
}

export { DEFAULT_STREAM_MAXLEN };

/** Entries per script call at most. */
const MAX_BATCH = 500;

/** ARGV[1] the MAXLEN (0: no trim), then gw, topic, payload, broker, at per entry; KEYS the entry's stream key. */
const APPEND = `local maxLen = ARGV[1]
for i = 1, #KEYS do
  local b = 1 + (i - 1) * 5
  if maxLen == '0' then
    redis.call('XADD', KEYS[i], '*', 'gw', ARGV[b + 1], 'topic', ARGV[b + 2], 'payload', ARGV[b + 3], 'broker', ARGV[b + 4], 'at', ARGV[b + 5])
  else
    redis.call('XADD', KEYS[i], 'MAXLEN', '~', maxLen, '*', 'gw', ARGV[b + 1], 'topic', ARGV[b + 2], 'payload', ARGV[b + 3], 'broker', ARGV[b + 4], 'at', ARGV[b + 5])
  end
end
return #KEYS`;

interface Pending { key: string; gateway: string; topic: string; payload: Buffer; at: number; resolve(): void; reject(err: Error): void }
type AppendingRedis = Redis & { csAppend(keys: number, ...args: (string | Buffer)[]): Promise<number> };

export function buildStreamAppender(opts: StreamAppenderOptions): StreamAppender {
  const now = opts.now ?? Date.now;
  const maxLen = opts.maxLen ?? DEFAULT_STREAM_MAXLEN;
  // XADD's approximate trim (~): cheap, keeps at least maxLen entries.
  const partitions = opts.partitions ?? 1;
  let redis: AppendingRedis | undefined;
  let queue: Pending[] = [];
  let scheduled = false;

  function flush(): void {
    scheduled = false;
    const r = redis;
    while (queue.length) {
      const batch = queue.length <= MAX_BATCH ? queue : queue.slice(0, MAX_BATCH);
      queue = queue.length <= MAX_BATCH ? [] : queue.slice(MAX_BATCH);
      if (!r) {
        for (const p of batch) p.reject(new Error('stream appender stopped'));
        continue;
      }
      // KEYS (one per entry), then ARGV: the MAXLEN, then the entries' fields.
      const args: (string | Buffer)[] = new Array(batch.length * 6 + 1);
      args[batch.length] = String(maxLen);
      for (let i = 0, k = batch.length + 1; i < batch.length; i++) {
        const p = batch[i];
        args[i] = p.key;
        args[k++] = p.gateway; args[k++] = p.topic; args[k++] = p.payload; args[k++] = opts.brokerId; args[k++] = String(p.at);
      }
      r.csAppend(batch.length, ...args).then(
        () => { for (const p of batch) p.resolve(); },
        (err: Error) => { for (const p of batch) p.reject(err); },
      );
    }
  }

  return {
    async start() {
      // No offline queue: a reading must be refused (not acknowledged) while Redis is away.
      const r = new Redis(opts.url, { enableOfflineQueue: false, maxRetriesPerRequest: 1, lazyConnect: true, enableAutoPipelining: true }) as AppendingRedis;
      r.defineCommand('csAppend', { lua: APPEND });
      r.on('error', (err) => opts.logger.warn({ err: err.message }, 'redis stream connection error'));
      await r.connect();
      const problem = await agreePartitions(r, opts.key, partitions);
      if (problem) {
        r.disconnect();
        throw new CsError(GatewayErrors.STREAM_PARTITIONS, problem);
      }
      redis = r;
    },
    async stop() {
      const r = redis;
      redis = undefined;
      if (r) await r.quit().catch(() => r.disconnect());
    },
    async append(topic, payload) {
      const t = parseTopic(topic);
      if (!t || (t.kind !== 'up' && t.kind !== 'alarm')) return false;
      if (!redis) throw new Error('stream appender not started');
      const key = partitionKey(opts.key, partitionOf(t.gateway, partitions), partitions);
      await new Promise<void>((resolve, reject) => {
        queue.push({ key, gateway: t.gateway, topic, payload, at: now(), resolve, reject });
        if (!scheduled) {
          scheduled = true;
          setImmediate(flush);
        }
      });
      return true;
    },
  };
}
