import { Type } from '@sinclair/typebox';
import { describe, expect, it } from 'vitest';
import { Value } from '@sinclair/typebox/value';
import { check, isDateTime } from '../../lib/schema.ts';
import { EdgeAlarm, Reading } from '../../lib/messages.ts';

describe('date-time format (RFC 3339 5.6)', () => {
  it('refuses impossible dates that Date.parse accepts (2026-02-30, year 0000)', () => {
    expect(Number.isNaN(Date.parse('2026-02-30T00:00:00Z'))).toBe(false);
    expect(isDateTime('2026-02-30T00:00:00Z')).toBe(false);
    expect(isDateTime('0000-01-01T00:00:00Z')).toBe(false);
    expect(check(Type.Object({ ts: Type.String({ format: 'date-time' }) }), { ts: '2026-02-30T12:00:00Z' }).ok).toBe(false);
  });

  it('knows month lengths and leap years', () => {
    expect(isDateTime('2024-02-29T00:00:00Z')).toBe(true);
    expect(isDateTime('2026-02-29T00:00:00Z')).toBe(false);
    expect(isDateTime('2000-02-29T00:00:00Z')).toBe(true);
    expect(isDateTime('2100-02-29T00:00:00Z')).toBe(false);
    expect(isDateTime('2026-04-31T00:00:00Z')).toBe(false);
    expect(isDateTime('2026-12-31T23:59:59.999Z')).toBe(true);
  });

  it('refuses out-of-range clock fields and offsets, and other shapes', () => {
    for (const bad of ['2026-13-01T00:00:00Z', '2026-01-00T00:00:00Z', '2026-01-01T24:00:00Z', '2026-01-01T00:60:00Z',
      '2026-01-01T00:00:60Z', '2026-01-01T00:00:00+24:00', '2026-01-01T00:00:00+08:60', '2026-01-01', '2026-01-01 00:00:00Z', 'yesterday']) {
      expect(isDateTime(bad), bad).toBe(false);
    }
    expect(isDateTime('2026-01-01T08:00:00+08:00')).toBe(true);
    expect(isDateTime('2026-01-01t00:00:00z')).toBe(true);
  });
});

describe('defaults', () => {
  const samples: unknown[] = [
    { seq: 1, ts: '2026-01-01T00:00:00Z', device: 'd1', values: { a: 1 } },
    { seq: 1, ts: '2026-01-01T00:00:00Z', device: 'd1', values: { a: 1 }, quality: 'bad', historical: true },
    { seq: 1, device: 'd1', values: { a: 1 }, quality: undefined },
    { hazard: 'x' }, {}, [], null, 'text', 7,
  ];

  it('fills a message schema\'s defaults exactly as Value.Default does, whether the value is valid or not', () => {
    for (const schema of [Reading, EdgeAlarm]) {
      for (const sample of samples) {
        const r = check(schema, structuredClone(sample));
        const expected = Value.Default(schema, structuredClone(sample));
        if (r.ok) expect(r.value).toEqual(expected);
        else expect(Value.Check(schema, expected)).toBe(false);
      }
    }
  });

  it('fills nested and object defaults (the generic path) as before', () => {
    const schema = Type.Object({
      inner: Type.Object({ n: Type.Integer({ default: 3 }) }, { default: {} }),
      list: Type.Array(Type.String(), { default: ['a'] }),
    });
    const r = check(schema, {});
    expect(r.ok && r.value).toEqual({ inner: { n: 3 }, list: ['a'] });
    const again = check(schema, {});
    expect(again.ok && again.value.list).not.toBe(r.ok && r.value.list); // a copy each time, not the schema's array
  });
});
