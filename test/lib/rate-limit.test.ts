import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { createRateLimiter } from '../../lib/rate-limit.ts';

describe('rate limiter (per source, fake timers)', () => {
  beforeEach(() => { vi.useFakeTimers(); });
  afterEach(() => { vi.useRealTimers(); });

  it('lets the first max events of a source pass per window and reports the suppressed count when the window ends', () => {
    const reports: [string, number, number][] = [];
    const limiter = createRateLimiter({ windowMs: 10_000, max: 3, onSuppressed: (s, n, w) => reports.push([s, n, w]) });
    const passed = Array.from({ length: 10 }, () => limiter.allow('gw-a')).filter(Boolean).length;
    expect(passed).toBe(3);
    expect(limiter.pending()).toEqual({ 'gw-a': 7 });
    vi.advanceTimersByTime(9_999);
    expect(reports).toEqual([]);
    vi.advanceTimersByTime(1);
    expect(reports).toEqual([['gw-a', 7, 10_000]]);
    // A new window: events pass again.
    expect(limiter.allow('gw-a')).toBe(true);
    limiter.close();
  });

  it('keeps sources apart: one noisy gateway does not silence another', () => {
    const reports: [string, number][] = [];
    const limiter = createRateLimiter({ windowMs: 1000, max: 1, onSuppressed: (s, n) => reports.push([s, n]) });
    expect(limiter.allow('noisy')).toBe(true);
    for (let i = 0; i < 100; i++) limiter.allow('noisy');
    expect(limiter.allow('quiet')).toBe(true);
    vi.advanceTimersByTime(1000);
    expect(reports).toEqual([['noisy', 100]]);
  });

  it('reports nothing for a window that suppressed nothing, and forgets ended windows', () => {
    const onSuppressed = vi.fn();
    const limiter = createRateLimiter({ windowMs: 1000, max: 5, onSuppressed });
    for (let i = 0; i < 5; i++) expect(limiter.allow('gw')).toBe(true);
    vi.advanceTimersByTime(1000);
    expect(onSuppressed).not.toHaveBeenCalled();
    expect(vi.getTimerCount()).toBe(0);
  });

  it('reports what is pending on close and leaves no timer behind', () => {
    const reports: [string, number][] = [];
    const limiter = createRateLimiter({ windowMs: 60_000, max: 0, onSuppressed: (s, n) => reports.push([s, n]) });
    limiter.allow('a');
    limiter.allow('a');
    limiter.allow('b');
    limiter.close();
    expect(reports).toEqual([['a', 2], ['b', 1]]);
    expect(vi.getTimerCount()).toBe(0);
  });

  it('refuses a window or limit that makes no sense', () => {
    expect(() => createRateLimiter({ windowMs: 0, max: 1, onSuppressed: () => undefined })).toThrow(RangeError);
    expect(() => createRateLimiter({ windowMs: 1000, max: 1.5, onSuppressed: () => undefined })).toThrow(RangeError);
  });
});
