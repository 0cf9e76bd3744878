import { protocolAddress, registerCount, type Point, type Profile, type Table } from '../devices/profile.ts';

/**
 * Read planning: the points of a profile grouped into as few Modbus reads as possible.
 * Points of one table whose registers touch or overlap are merged into one block, up to the
 * protocol's limit per request (125 registers, 2000 coils or discrete inputs). Points separated by at
 * most `maxGap` unused registers are merged too, reading the gap: fewer requests per pass bring a pass
 * nearer the wire-time limit (docs/architecture.md#modbus-and-its-physical-limits), since each request costs a turnaround and the
 * device's reply time. The default 0 never reads a gap: many devices answer exception 2 for
 * unmapped registers, so a gap is something to allow per device once its map is known.
 */

export const MAX_REGISTERS_PER_READ = 125;
export const MAX_BITS_PER_READ = 2000;

export interface ReadBlock {
  table: Table;
  /** Protocol (0-based) address of the first register or coil. */
  address: number;
  count: number;
  /** The points decoded from this block, with their offset into it. */
  points: { point: Point; offset: number; count: number }[];
}

export function maxPerRead(table: Table): number {
  return table === 'coil' || table === 'discrete' ? MAX_BITS_PER_READ : MAX_REGISTERS_PER_READ;
}

export interface PlanOptions {
  /** Largest run of unused registers (or bits) read through to merge two reads; default 0. */
  maxGap?: number;
}

export function planReads(profile: Profile, opts: PlanOptions = {}): ReadBlock[] {
  const maxGap = opts.maxGap ?? 0;
  const byTable = new Map<Table, { point: Point; start: number; count: number }[]>();
  for (const point of profile.points) {
    const list = byTable.get(point.table) ?? [];
    list.push({ point, start: protocolAddress(profile, point), count: registerCount(point) });
    byTable.set(point.table, list);
  }
  const blocks: ReadBlock[] = [];
  for (const table of ['holding', 'input', 'coil', 'discrete'] as const) {
    const list = byTable.get(table);
    if (!list) continue;
    list.sort((a, b) => a.start - b.start || a.count - b.count);
    const limit = maxPerRead(table);
    let cur: ReadBlock | undefined;
    for (const item of list) {
      const end = item.start + item.count;
      const fits = cur && item.start <= cur.address + cur.count + maxGap && Math.max(end, cur.address + cur.count) - cur.address <= limit;
      if (!cur || !fits) {
        cur = { table, address: item.start, count: item.count, points: [] };
        blocks.push(cur);
      }
      cur.count = Math.max(cur.count, end - cur.address);
      cur.points.push({ point: item.point, offset: item.start - cur.address, count: item.count });
    }
  }
  return blocks;
}
