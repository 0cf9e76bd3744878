import { Type, type Static } from '@sinclair/typebox';
import { ID_PATTERN } from './topics.ts';
import { PollModeT, SeverityT } from './vocabulary.ts';

/** A point value as it travels: numbers, flags and short strings. */
export const PointValue = Type.Union([Type.Number(), Type.Boolean(), Type.String({ maxLength: 256 })]);

/** An edge's stream identity: made once when its sequence store is created (edge/seq.ts). */
export const STREAM_PATTERN = '^[A-Za-z0-9_-]{1,64}$';

/**
 * A reading, published QoS 1 on `cs/v1/{gateway}/up/{device}`.
 * `seq` increases per gateway stream and survives restarts. `stream` names that stream (a new edge
 * or a wiped data directory is a new stream, as Sparkplug's bdSeq names a session), so
 * (gateway, stream, device, seq) is the cloud's idempotency key; a reading without `stream`
 * belongs to the gateway's unnamed stream ''. `seq` is a safe integer (no 1e300, no 2^63).
 */
export const Reading = Type.Object(
  {
    seq: Type.Integer({ minimum: 0, maximum: Number.MAX_SAFE_INTEGER }),
    stream: Type.Optional(Type.String({ pattern: STREAM_PATTERN })),
    ts: Type.String({ format: 'date-time' }),
    device: Type.String({ pattern: ID_PATTERN }),
    values: Type.Record(Type.String({ pattern: '^[a-z][a-z0-9_]{0,63}$' }), PointValue, { minProperties: 1, maxProperties: 64 }),
    quality: Type.Union([Type.Literal('good'), Type.Literal('uncertain'), Type.Literal('bad')], { default: 'good' }),
    historical: Type.Boolean({ default: false }),
  },
  { additionalProperties: false },
);
export type Reading = Static<typeof Reading>;

/** Retained on `cs/v1/{gateway}/state`: birth on connect; the Will says offline. */
export const GatewayState = Type.Object(
  {
    online: Type.Boolean(),
    bdSeq: Type.Integer({ minimum: 0 }),
    ts: Type.String({ format: 'date-time' }),
    version: Type.Optional(Type.String()),
    mode: Type.Optional(Type.String()),
    /** In a birth: the revision and digest of the buses and devices the edge polls (edge/live-config.ts). */
    config: Type.Optional(Type.Object({ revision: Type.Integer({ minimum: 0 }), digest: Type.String({ maxLength: 64 }) })),
  },
  { additionalProperties: true },
);
export type GatewayState = Static<typeof GatewayState>;

/** A command on `cs/v1/{gateway}/cmd`, acknowledged on `.../cmd/ack` with the same id. */
export const Command = Type.Object({
  id: Type.String({ minLength: 1, maxLength: 64 }),
  type: Type.String({ minLength: 1, maxLength: 32 }),
  expires: Type.Optional(Type.String({ format: 'date-time' })),
}, { additionalProperties: true });
export type Command = Static<typeof Command>;

export const CommandAck = Type.Object({
  id: Type.String(),
  outcome: Type.Union([Type.Literal('ok'), Type.Literal('rejected'), Type.Literal('failed')]),
  message: Type.Optional(Type.String()),
  ts: Type.String({ format: 'date-time' }),
});
export type CommandAck = Static<typeof CommandAck>;

/**
 * An edge-local alarm, published QoS 1 on `cs/v1/{gateway}/alarm/{device}` when a rule of class
 * `urgent` has held past its hold time at the edge (`active: true`), and again when it is clear
 * (`active: false`). It shares the gateway's `seq` (the idempotency key) with the readings; `rule`
 * and `hazard` name a rule of the shared rule set (devices/rules.ts); `limit` is the limit the edge
 * used (the emergency one in fast mode). README.md "Topics", docs/architecture.md.
 */
export const EdgeAlarm = Type.Object(
  {
    seq: Type.Integer({ minimum: 0, maximum: Number.MAX_SAFE_INTEGER }),
    /** The edge's stream, as in a reading. */
    stream: Type.Optional(Type.String({ pattern: STREAM_PATTERN })),
    ts: Type.String({ format: 'date-time' }),
    device: Type.String({ pattern: ID_PATTERN }),
    rule: Type.String({ pattern: '^[a-z][a-z0-9-]{0,63}$' }),
    hazard: Type.String({ pattern: '^[a-z][a-z0-9-]{0,63}$' }),
    severity: SeverityT,
    point: Type.String({ pattern: '^[a-z][a-z0-9_]{0,63}$' }),
    value: PointValue,
    limit: Type.Optional(Type.Union([Type.Number(), Type.Boolean()])),
    /** true: raised; false: clear again. */
    active: Type.Boolean(),
    /** When the condition began to hold (raise) or stopped holding (clear). */
    since: Type.String({ format: 'date-time' }),
    /** true when replayed from the outbox after an outage (as for readings). */
    historical: Type.Boolean({ default: false }),
  },
  { additionalProperties: false },
);
export type EdgeAlarm = Static<typeof EdgeAlarm>;

/**
 * The edge's health message, published QoS 0 on `cs/v1/{gateway}/health` every `healthMs`
 * (README.md "Edge gateway"): per bus its link and poll counters, per slave its fault counters
 * and breaker, and the outbox. The cloud shows it in its device API.
 */
const Count = Type.Integer({ minimum: 0 });

export const SlaveHealthSchema = Type.Object({
  device: Type.String(),
  unitId: Type.Integer(),
  ok: Count, timeout: Count, crc: Count, exception: Count, wrongUnit: Count, truncated: Count, badFrame: Count,
  /** Polls that failed because the bus link was down (not the slave's fault). */
  busDown: Count,
  /** Registers that did not decode. */
  decode: Count,
  /** Polls skipped while the breaker was open; probes tried. */
  skipped: Count, probes: Count,
  breaker: Type.Union([Type.Literal('closed'), Type.Literal('open'), Type.Literal('half-open')]),
  consecutiveFaults: Count,
  backoffMs: Count,
  nextProbe: Type.Optional(Type.String({ format: 'date-time' })),
  lastFault: Type.Optional(Type.String()),
});

export const EdgeHealthSchema = Type.Object({
  ts: Type.String({ format: 'date-time' }),
  gateway: Type.String(),
  mode: PollModeT,
  seq: Count,
  published: Count,
  suppressed: Count,
  outbox: Type.Object({
    depth: Count, appended: Count, acked: Count, dropped: Count, inflight: Count, oldestSeq: Type.Optional(Count),
    /** Entries dropped by the outbox's retention (`outbox.maxAgeMs`); optional for older edges. */
    expired: Type.Optional(Count),
    /** Age of the oldest entry waiting (ms); optional for older edges. */
    oldestAgeMs: Type.Optional(Count),
  }),
  buses: Type.Record(Type.String(), Type.Object({
    ok: Count,
    errors: Count,
    link: Type.Object({ opens: Count, openFailures: Count, drops: Count, requests: Count, late: Count, open: Type.Boolean() }),
    slaves: Type.Array(SlaveHealthSchema),
  })),
});
export type EdgeHealth = Static<typeof EdgeHealthSchema>;
