/**
 * The rule state of each stream partition's devices, kept in Redis (`{stream}:rules:{N}`, a hash
 * device -> RuleSnapshot JSON) so that a partition's next owner judges on where the last one left
 * off (docs/architecture.md#partitions). Written after each handled batch, before its XACK, and only
 * while the writer still holds the partition's lease (checked in the same script: a worker that lost
 * its lease cannot overwrite the new owner's state).
 */
import { Redis } from 'ioredis';
import type { Logger } from '../lib/log.ts';
import type { RuleSnapshot } from './rules.ts';
import { leaseKey } from './stream-leases.ts';

export interface RuleStateStore {
  /** Resolves false when the lease `consumer#fence` is no longer held (nothing written). */
  save(partition: number, fence: number, states: [device: string, snap: RuleSnapshot][]): Promise<boolean>;
  load(partition: number): Promise<Map<string, RuleSnapshot>>;
  close(): Promise<void>;
}

const SAVE = `if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
for i = 2, #ARGV, 2 do redis.call('HSET', KEYS[2], ARGV[i], ARGV[i + 1]) end
return 1`;

export function createRuleStateStore(o: { url: string; stream: string; consumer: string; logger: Logger }): RuleStateStore {
  // Connected on first use; commands wait (offline queue) while it connects.
  const redis = new Redis(o.url, { lazyConnect: true, maxRetriesPerRequest: 3 });
  redis.on('error', (err) => o.logger.warn({ err: err.message }, 'rule state redis error'));
  const keyOf = (p: number) => `${o.stream}:rules:${p}`;
  return {
    async save(p, fence, states) {
      if (states.length === 0) return true;
      const args = states.flatMap(([d, snap]) => [d, JSON.stringify(snap)]);
      return Number(await redis.eval(SAVE, 2, leaseKey(o.stream, p), keyOf(p), `${o.consumer}#${fence}`, ...args)) === 1;
    },
    async load(p) {
      const out = new Map<string, RuleSnapshot>();
      for (const [d, v] of Object.entries(await redis.hgetall(keyOf(p)))) {
        try { out.set(d, JSON.parse(v) as RuleSnapshot); } catch { /* unreadable: the device starts afresh */ }
      }
      return out;
    },
    async close() {
      if (redis.status === 'wait') redis.disconnect();
      else await redis.quit().catch(() => redis.disconnect());
    },
  };
}
