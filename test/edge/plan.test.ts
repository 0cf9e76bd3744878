import { describe, expect, it } from 'vitest';
import { loadProfiles, type Point, type Profile } from '../../devices/profile.ts';
import { planReads, MAX_REGISTERS_PER_READ } from '../../edge/plan.ts';

const profiles = loadProfiles();

function point(key: string, address: number, extra: Partial<Point> = {}): Point {
  return { key, name: key, table: 'holding', address, type: 'uint16', scale: 1, offset: 0, unit: '', writable: false, ...extra };
}

function profileOf(points: Point[], addressBase: 0 | 1 = 0): Profile {
  return { id: 'test', kind: 'pipeline', name: 'test', addressBase, order: 'ABCD', pollMs: 1000, points, thresholds: [] };
}

describe('planReads', () => {
  it('reads the contiguous registers of each built-in profile in one request', () => {
    const mh = planReads(profiles.get('manhole-cover')!);
    expect(mh.map((b) => [b.table, b.address, b.count])).toEqual([['holding', 0, 7]]);
    const pl = planReads(profiles.get('pipeline')!);
    expect(pl.map((b) => [b.table, b.address, b.count])).toEqual([['holding', 0, 12]]);
    expect(pl[0].points.map((p) => [p.point.key, p.offset, p.count])).toEqual([
      ['pressure_mpa', 0, 2], ['flow_m3h', 2, 2], ['totalizer_m3', 4, 4], ['tag', 8, 4],
    ]);
  });

  it('never reads across a gap, and keeps tables apart', () => {
    const blocks = planReads(profileOf([
      point('a', 10), point('b', 11), point('c', 20),
      point('d', 10, { table: 'input' }),
      point('e', 3, { table: 'coil', type: 'bits' }), point('f', 4, { table: 'coil', type: 'bits' }),
    ]));
    expect(blocks.map((b) => [b.table, b.address, b.count])).toEqual([
      ['holding', 10, 2], ['holding', 20, 1], ['input', 10, 1], ['coil', 3, 2],
    ]);
  });

  it('puts bits of one register in one read and honours 1-based addressing', () => {
    const blocks = planReads(profileOf([
      point('x', 5, { type: 'bits', bit: 0 }), point('y', 5, { type: 'bits', bit: 3 }), point('z', 6),
    ], 1));
    expect(blocks.map((b) => [b.address, b.count])).toEqual([[4, 2]]);
    expect(blocks[0].points.map((p) => p.offset)).toEqual([0, 0, 1]);
  });

  it('splits a long contiguous run at 125 registers per read', () => {
    const points = Array.from({ length: 150 }, (_, i) => point(`p${i}`, i));
    const blocks = planReads(profileOf(points));
    expect(blocks.map((b) => [b.address, b.count])).toEqual([[0, MAX_REGISTERS_PER_READ], [125, 25]]);
    // A multi-register value is never cut in two.
    const floats = Array.from({ length: 63 }, (_, i) => point(`f${i}`, i * 2, { type: 'float32' }));
    const fb = planReads(profileOf(floats));
    expect(fb.map((b) => [b.address, b.count])).toEqual([[0, 124], [124, 2]]);
  });
});

describe('planReads with maxGap', () => {
  it('reads through gaps up to maxGap to save requests, never past 125 registers', () => {
    const points = [point('a', 0), point('b', 3), point('c', 10), point('d', 200)];
    expect(planReads(profileOf(points)).map((b) => [b.address, b.count])).toEqual([[0, 1], [3, 1], [10, 1], [200, 1]]);
    const merged = planReads(profileOf(points), { maxGap: 6 });
    expect(merged.map((b) => [b.address, b.count])).toEqual([[0, 11], [200, 1]]);
    expect(merged[0].points.map((p) => [p.point.key, p.offset])).toEqual([['a', 0], ['b', 3], ['c', 10]]);
    const far = Array.from({ length: 20 }, (_, i) => point(`p${i}`, i * 10));
    const blocks = planReads(profileOf(far), { maxGap: 9 });
    expect(blocks.every((b) => b.count <= MAX_REGISTERS_PER_READ)).toBe(true);
    expect(blocks.map((b) => [b.address, b.count])).toEqual([[0, 121], [130, 61]]);
  });
});
