/**
 * Partitions of the readings stream (docs/architecture.md#partitions): every broker appends a
 * gateway's readings and edge alarms to the partition its id hashes to, and one cloud worker at a
 * time owns a partition (cloud/stream-leases.ts), so one device's readings are judged by one rule
 * state. Shared by the brokers and the cloud: both must agree on the count.
 */

/** The most partitions a stream may have. */
export const MAX_PARTITIONS = 1024;

/**
 * FNV-1a, 32 bits, then MurmurHash3's finaliser (FNV alone keeps strings that differ in one early
 * character in the same order): stable across processes, versions and machines.
 */
export function hash32(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/** The partition (0 .. partitions-1) of a gateway. */
export function partitionOf(gateway: string, partitions: number): number {
  return partitions <= 1 ? 0 : hash32(gateway) % partitions;
}

/** The Redis key of a partition: the stream key itself when there is one partition (as before partitions), else `key:pN`. */
export function partitionKey(stream: string, partition: number, partitions: number): string {
  return partitions <= 1 ? stream : `${stream}:p${partition}`;
}

/** The key that records the partition count of a stream, checked by every broker and worker at start. */
export function partitionCountKey(stream: string): string {
  return `${stream}:partitions`;
}

/**
 * Records the partition count of a stream on first use and checks it afterwards: a broker and a
 * worker that disagree would put one gateway's readings where nobody reads them. Resolves the
 * recorded count, or a message when it differs.
 */
export async function agreePartitions(
  redis: { set(key: string, value: string, nx: 'NX'): Promise<unknown>; get(key: string): Promise<string | null> },
  stream: string,
  partitions: number,
): Promise<string | undefined> {
  const key = partitionCountKey(stream);
  await redis.set(key, String(partitions), 'NX');
  const recorded = await redis.get(key);
  if (recorded !== null && recorded !== String(partitions)) {
    return `stream ${stream} has ${recorded} partitions (recorded at ${key}); this process is configured with ${partitions}: set stream.partitions alike on every broker and worker`;
  }
  return undefined;
}
