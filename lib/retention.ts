/**
 * How old a reading may be and still count (issue #10, "plausible time"): the edge's outbox drops
 * what it held longer than OUTBOX_MAX_AGE_MS (counted as `expired` in its health), and the cloud
 * accepts readings up to the same age (`readings.maxAgeMs`), so nothing the edge replays is refused
 * as `ts-too-old` and deleted unseen (README "The outbox and `historical`").
 */
export const OUTBOX_MAX_AGE_MS = 90 * 24 * 3_600_000;
/**
 * The cloud's default `readings.maxAgeMs`: the outbox's retention plus a day for the edge's clock
 * drift and the time in transit, so an entry the edge still holds is never too old for the cloud.
 */
export const READING_MAX_AGE_MS = OUTBOX_MAX_AGE_MS + 24 * 3_600_000;
