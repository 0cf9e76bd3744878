/**
 * The acknowledgements of the current mode command, shared by the cloud workers in Redis
 * (`{stream}:acks:{command id}`, a hash gateway -> `{ at, outcome, message }`, kept 7 days), so that
 * `GET /api/emergency/*` answers the same on every worker (docs/architecture.md#partitions). Every
 * worker receives every ack over MQTT and records it; a worker that learns of a switch made on
 * another loads what was acknowledged before it did. An `ok` is never overwritten by a later refusal.
 */
import { Redis } from 'ioredis';
import type { Logger } from '../../lib/log.ts';

export interface AckRecord { at: number; outcome: string; message?: string }

export interface SharedAcks {
  record(id: string, gateway: string, ack: AckRecord): void;
  load(id: string): Promise<Map<string, AckRecord>>;
  close(): Promise<void>;
}

const RECORD = `local cur = redis.call('HGET', KEYS[1], ARGV[1])
if cur and cjson.decode(cur).outcome == 'ok' then return 0 end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return 1`;

const KEEP_MS = String(7 * 24 * 3600_000);

export function createSharedAcks(o: { url: string; key: string; logger: Logger }): SharedAcks {
  // Connected on first use; commands wait (offline queue) while it connects.
  const redis = new Redis(o.url, { lazyConnect: true, maxRetriesPerRequest: 3 });
  redis.on('error', (err) => o.logger.warn({ err: err.message }, 'shared acks redis error'));
  const keyOf = (id: string) => `${o.key}:${id}`;
  return {
    record(id, gateway, ack) {
      redis.eval(RECORD, 1, keyOf(id), gateway, JSON.stringify(ack), KEEP_MS)
        .catch((err: Error) => o.logger.warn({ err: err.message, gateway, id }, 'ack not shared with the other workers'));
    },
    async load(id) {
      const all = await redis.hgetall(keyOf(id));
      const out = new Map<string, AckRecord>();
      for (const [gw, v] of Object.entries(all)) {
        try { out.set(gw, JSON.parse(v) as AckRecord); } catch { /* not ours: skipped */ }
      }
      return out;
    },
    async close() {
      if (redis.status === 'wait') redis.disconnect();
      else await redis.quit().catch(() => redis.disconnect());
    },
  };
}
