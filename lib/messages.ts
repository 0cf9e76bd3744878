import { Type, type Static } from '@sinclair/typebox';
import { ID_PATTERN } from './topics.ts';
import { SeverityT } from './vocabulary.ts';

/** A point value as it travels: numbers, flags and short strings. */
export const PointValue = Type.Union([Type.Number(), Type.Boolean(), Type.String({ maxLength: 256 })]);

/**
 * A reading, published QoS 1 on `cs/v1/{gateway}/up/{device}`.
 * `seq` increases per gateway and survives restarts: (gateway, seq) is the idempotency key.
 */
export const Reading = Type.Object(
  {
    seq: Type.Integer({ minimum: 0 }),
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
    seq: Type.Integer({ minimum: 0 }),
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
