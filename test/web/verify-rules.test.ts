import { describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { byHandledAt, handledAtOf, readiness, type HandledCase } from '../../cloud/web/app/src/verify.ts';

/** What the verifier's pages make of the API's sensor check and the queue's order (cloud/web/app/src/verify.ts). */

const T = Date.parse('2026-11-30T10:00:00.000Z');
const MIN = 60_000;

describe("the verifier's rules", () => {
  it('says ready only when the server does, counts down the window while back in range, and says out of range while an alarm is active', () => {
    expect(readiness({ inRange: true, backSince: new Date(T - 20 * MIN).toISOString(), windowMs: 10 * MIN, ready: true }, T)).toEqual({ kind: 'ready' });
    expect(readiness({ inRange: true, backSince: new Date(T - 4 * MIN).toISOString(), windowMs: 10 * MIN, ready: false }, T))
      .toEqual({ kind: 'waiting', msLeft: 6 * MIN, readyAt: T + 6 * MIN });
    expect(readiness({ inRange: false, backSince: null, windowMs: 10 * MIN, ready: false }, T)).toEqual({ kind: 'out' });
    expect(readiness(undefined, T)).toEqual({ kind: 'none' });
  });

  it('holds a countdown at zero (never negative) when the server has not yet said ready: the page asks it again', () => {
    const r = readiness({ inRange: true, backSince: new Date(T - 11 * MIN).toISOString(), windowMs: 10 * MIN, ready: false }, T);
    expect(r).toMatchObject({ kind: 'waiting', msLeft: 0 });
  });

  it('orders the queue oldest handled first, by handledAt (the last update where a server sends none)', () => {
    const c = (id: string, handledAt: string | null, updatedAt: string) => ({ id, handledAt, updatedAt }) as unknown as HandledCase;
    const list = [c('C-3', '2026-11-30T09:00:00.000Z', '2026-11-30T09:30:00.000Z'), c('C-1', '2026-11-30T08:00:00.000Z', '2026-11-30T09:50:00.000Z'), c('C-2', null, '2026-11-30T08:30:00.000Z')];
    expect(list.sort(byHandledAt).map((x) => x.id)).toEqual(['C-1', 'C-2', 'C-3']);
    expect(handledAtOf(c('C-4', null, '2026-11-30T07:00:00.000Z'))).toBe('2026-11-30T07:00:00.000Z');
  });

  it('has the same catalogue keys in Chinese and English for both pages', () => {
    const keys = (o: Record<string, unknown>, p = ''): string[] => Object.entries(o).flatMap(([k, v]) => (v && typeof v === 'object' ? keys(v as Record<string, unknown>, `${p}${k}.`) : [`${p}${k}`])).sort();
    for (const page of ['verify', 'verifyCase']) {
      const read = (l: string) => JSON.parse(readFileSync(new URL(`../../cloud/web/app/src/locales/${l}/${page}.json`, import.meta.url), 'utf8')) as Record<string, unknown>;
      expect(keys(read('en')), page).toEqual(keys(read('zh-CN')));
    }
  });
});
