/**
 * Who owns which partition of the readings stream (docs/architecture.md#partitions).
 *
 * - Membership: each worker renews its entry in the sorted set `{stream}:workers` (score = expiry,
 *   by Redis' clock); entries past their expiry are dropped by whoever looks next.
 * - Assignment: every worker computes the same owner for each partition from the live members,
 *   by rendezvous hashing (highest hash32(worker/partition) wins): a join or a death moves only
 *   the partitions that hash to that worker.
 * - Leases: a worker takes a partition it should own with `{stream}:lease:{p}` = `worker#fence`
 *   (SET PX leaseMs, only when free or held by its own earlier run), the fence counting up on every
 *   take. It renews every leaseMs/3 and trusts a lease only until leaseMs*0.8 after the last
 *   renewal was sent, so it stops reading before anyone else may start. A partition that should
 *   move is marked and released by the consumer between batches (`settle`), never mid-batch.
 */
import type { Redis } from 'ioredis';
import type { Logger } from '../lib/log.ts';
import { hash32 } from '../lib/partition.ts';

export interface LeaseOptions {
  redis: Redis;
  /** Full key of the stream (the keys here hang off it). */
  stream: string;
  consumer: string;
  partitions: number;
  leaseMs: number;
  logger: Logger;
  now?: () => number;
}

export interface PartitionLeases {
  /** Heartbeat, then take, renew or mark for release each partition as the assignment says. */
  tick(): Promise<void>;
  /** Partitions held now (their lease trusted), in order. */
  owned(): number[];
  held(p: number): boolean;
  /** The fence of a held partition (it grows with every take), else undefined. */
  fence(p: number): number | undefined;
  /** Releases the partitions marked for another worker; resolves which were released. */
  settle(): Promise<number[]>;
  /** Releases every lease and leaves the membership (a clean stop). */
  leave(): Promise<void>;
  /** The live workers as last seen. */
  members(): string[];
}

const HEARTBEAT = `local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
return redis.call('ZRANGE', KEYS[1], 0, -1)`;

const ACQUIRE = `local cur = redis.call('GET', KEYS[1])
if cur and string.match(cur, '^(.*)#%d+$') ~= ARGV[1] then return 0 end
local f = redis.call('INCR', KEYS[2])
redis.call('SET', KEYS[1], ARGV[1] .. '#' .. f, 'PX', ARGV[2])
return f`;

const RENEW = `if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0`;

const RELEASE = `if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0`;

interface Lease { fence: number; value: string; trustedUntil: number; release: boolean }

/** The owner of partition `p` among `members` (rendezvous hashing). */
export function ownerOf(p: number, members: readonly string[]): string | undefined {
  let best: string | undefined;
  let score = -1;
  for (const m of members) {
    const s = hash32(`${m}/${p}`);
    if (s > score || (s === score && best !== undefined && m < best)) { best = m; score = s; }
  }
  return best;
}

export const leaseKey = (stream: string, p: number): string => `${stream}:lease:${p}`;
export const membersKey = (stream: string): string => `${stream}:workers`;

export function createPartitionLeases(o: LeaseOptions): PartitionLeases {
  const now = o.now ?? Date.now;
  const log = o.logger;
  const leases = new Map<number, Lease>();
  const trustMs = Math.floor(o.leaseMs * 0.8);
  let members: string[] = [];
  const ttl = String(o.leaseMs);

  const fenceKey = (p: number) => `${o.stream}:fence:${p}`;
  const trusted = (l: Lease | undefined) => l !== undefined && now() < l.trustedUntil;

  async function take(p: number): Promise<void> {
    const sent = now();
    const f = Number(await o.redis.eval(ACQUIRE, 2, leaseKey(o.stream, p), fenceKey(p), o.consumer, ttl));
    if (f > 0) {
      leases.set(p, { fence: f, value: `${o.consumer}#${f}`, trustedUntil: sent + trustMs, release: false });
      log.info({ partition: p, fence: f }, 'partition taken');
    }
  }

  async function renew(p: number, l: Lease): Promise<void> {
    const sent = now();
    if (Number(await o.redis.eval(RENEW, 1, leaseKey(o.stream, p), l.value, ttl)) === 1) {
      l.trustedUntil = sent + trustMs;
    } else {
      leases.delete(p);
      log.warn({ partition: p, fence: l.fence }, 'partition lease lost (expired or taken over)');
    }
  }

  async function drop(p: number, l: Lease): Promise<void> {
    leases.delete(p);
    await o.redis.eval(RELEASE, 1, leaseKey(o.stream, p), l.value).catch(() => undefined);
  }

  return {
    async tick() {
      members = (await o.redis.eval(HEARTBEAT, 1, membersKey(o.stream), o.consumer, ttl)) as string[];
      const work: Promise<void>[] = [];
      for (let p = 0; p < o.partitions; p++) {
        const mine = ownerOf(p, members) === o.consumer;
        const l = leases.get(p);
        if (l && !trusted(l)) {
          leases.delete(p);
          log.warn({ partition: p, fence: l.fence }, 'partition lease not renewed in time; let go');
        } else if (l) {
          l.release = !mine;
          work.push(renew(p, l));
          continue;
        }
        if (mine) work.push(take(p));
      }
      const failed = (await Promise.allSettled(work)).filter((r) => r.status === 'rejected');
      if (failed.length) throw (failed[0] as PromiseRejectedResult).reason;
    },
    owned: () => [...leases].filter(([, l]) => trusted(l)).map(([p]) => p).sort((a, b) => a - b),
    held: (p) => trusted(leases.get(p)),
    fence: (p) => (trusted(leases.get(p)) ? leases.get(p)!.fence : undefined),
    async settle() {
      const out: number[] = [];
      for (const [p, l] of [...leases]) {
        if (!l.release) continue;
        await drop(p, l);
        out.push(p);
        log.info({ partition: p }, 'partition released to another worker');
      }
      return out;
    },
    async leave() {
      await Promise.all([...leases].map(([p, l]) => drop(p, l)));
      await o.redis.zrem(membersKey(o.stream), o.consumer).catch(() => undefined);
    },
    members: () => [...members],
  };
}
