/**
 * Defaults of the Redis options (cluster.ts, stream.ts), apart from them so that reading a
 * configuration does not load ioredis (docs/architecture.md#broker-memory).
 */
export const DEFAULT_KEY_PREFIX = 'cs:';
/** Letters, digits and `:_.-`: nothing that Redis glob patterns or MQTT topics treat specially. */
export const KEY_PREFIX_PATTERN = '^[A-Za-z0-9:_.-]{1,64}$';
export const DEFAULT_STREAM_MAXLEN = 1_000_000;
