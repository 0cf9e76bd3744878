import { Value } from '@sinclair/typebox/value';
import { describe, expect, it } from 'vitest';
import { EdgeOutbox } from '../../edge/config.ts';
import { checkTime, DEFAULT_READING_LIMITS } from '../../cloud/reading-check.ts';

/**
 * Issue #10, silent loss of old readings: the edge's outbox and the cloud's `readings.maxAgeMs`
 * agree (lib/retention.ts), so a reading the outbox still replays is never refused as `ts-too-old`
 * (acknowledged, deleted at the edge and lost).
 */
describe('edge outbox retention and the cloud\'s readings.maxAgeMs', () => {
  it('a reading the edge outbox still holds after a long outage is not refused by the cloud as ts-too-old (the defaults agree)', () => {
    const retention = (Value.Default(EdgeOutbox, {}) as { maxAgeMs?: number }).maxAgeMs;
    expect(retention).toBeGreaterThan(0);
    const now = Date.parse('2026-11-30T10:00:00Z');
    // The oldest entry the outbox still replays, measured a second before it was appended, on an edge clock an hour behind.
    const ts = now - retention! - 1000 - 3_600_000;
    expect(checkTime(ts, new Date(ts).toISOString(), now, DEFAULT_READING_LIMITS)).toBeUndefined();
    // What the outbox has dropped is what the cloud would refuse, give or take its day of margin.
    const tooOld = now - retention! - 2 * 86_400_000;
    expect(checkTime(tooOld, new Date(tooOld).toISOString(), now, DEFAULT_READING_LIMITS)).toMatchObject({ reason: 'ts-too-old' });
  });
});
