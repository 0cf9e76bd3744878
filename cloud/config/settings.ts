import { Type, type Static } from '@sinclair/typebox';
import { DEFAULT_FAST_POLL_MS } from '../../lib/vocabulary.ts';
import { WarningPolicy } from '../emergency/policy.ts';

/**
 * The two kinds of configuration that had no schema of their own before configuration became data
 * (cloud/config/kinds.ts): the case clock's escalation steps and the emergency settings.
 */

/** The case clock (cloud/escalation.ts EscalationPolicy): reminders, the ladder's steps, the pass interval. */
export const EscalationSettings = Type.Object({
  /** Remind this long before the deadline (at most a quarter of the time allowed). */
  remindBeforeMs: Type.Integer({ minimum: 0, maximum: 30 * 86_400_000 }),
  /** A dispatched case not accepted within this escalates. */
  ackWithinMs: Type.Integer({ minimum: 1000, maximum: 30 * 86_400_000 }),
  /** Time between rungs of the ladder (crew, duty leader, command centre). */
  stepMs: Type.Integer({ minimum: 1000, maximum: 30 * 86_400_000 }),
  /** How often the case clock runs a pass. */
  tickMs: Type.Integer({ minimum: 100, maximum: 3_600_000 }),
}, { additionalProperties: false });
export type EscalationSettings = Static<typeof EscalationSettings>;

/** Emergency mode's settings (cloud/emergency/config.ts): the warning policy, what gateways switch to, retries. */
export const EmergencySettings = Type.Object({
  /** Events, areas, signal colours and CAP severities to response levels (cloud/emergency/policy.ts). */
  policy: WarningPolicy,
  /** Poll and heartbeat intervals the gateways switch to in emergency mode. */
  fast: Type.Object({
    pollMs: Type.Integer({ minimum: 100, maximum: 3_600_000 }),
    heartbeatMs: Type.Optional(Type.Integer({ minimum: 100, maximum: 3_600_000 })),
  }, { additionalProperties: false, default: { pollMs: DEFAULT_FAST_POLL_MS } }),
  /** Retry period of unacknowledged mode commands. */
  retryMs: Type.Integer({ minimum: 100, maximum: 600_000, default: 3000 }),
  /** Pull open hazard cases in to the 12-hour cap when the mode starts. */
  tightenOpenCases: Type.Boolean({ default: true }),
}, { additionalProperties: false });
export type EmergencySettings = Static<typeof EmergencySettings>;
