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

export function buildStreamAppender(opts: StreamAppenderOptions): StreamAppender {
  const now = opts.now ?? Date.now;
  const maxLen = opts.maxLen ?? DEFAULT_STREAM_MAXLEN;
  // XADD's approximate trim (~): cheap, keeps at least maxLen entries.
  const partitions = opts.partitions ?? 1;
  const trim = maxLen > 0 ? ['MAXLEN', '~', String(maxLen)] : [];
  let redis: Redis | undefined;

  return {
    async start() {
      // No offline queue: a reading must be refused (not acknowledged) while Redis is away.
      const r = new Redis(opts.url, { enableOfflineQueue: false, maxRetriesPerRequest: 1, lazyConnect: true, enableAutoPipelining: true });
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
      await redis.xadd(partitionKey(opts.key, partitionOf(t.gateway, partitions), partitions), ...(trim as []), '*', 'gw', t.gateway, 'topic', topic, 'payload', payload, 'broker', opts.brokerId, 'at', String(now()));
      return true;
    },
  };
}
