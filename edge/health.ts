import { Type, type Static } from '@sinclair/typebox';

/**
 * The health message, published QoS 0 on `cs/v1/{gateway}/health` every `healthMs`
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
  mode: Type.Union([Type.Literal('normal'), Type.Literal('fast')]),
  seq: Count,
  published: Count,
  suppressed: Count,
  outbox: Type.Object({
    depth: Count, appended: Count, acked: Count, dropped: Count, inflight: Count, oldestSeq: Type.Optional(Count),
  }),
  buses: Type.Record(Type.String(), Type.Object({
    ok: Count,
    errors: Count,
    link: Type.Object({ opens: Count, openFailures: Count, drops: Count, requests: Count, late: Count, open: Type.Boolean() }),
    slaves: Type.Array(SlaveHealthSchema),
  })),
});
export type EdgeHealth = Static<typeof EdgeHealthSchema>;
