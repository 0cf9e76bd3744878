import { Type, type Static, type TSchema } from '@sinclair/typebox';
import { CaseClassT, CityModeT, DEVICE_STATUSES, SEVERITIES } from '../../lib/vocabulary.ts';
import { StringEnum } from './schemas.ts';

/** TypeBox schemas of the operator's device data (README "The API"): list filters, history buckets, health, thresholds. */

const Nullable = <T extends TSchema>(t: T) => Type.Union([t, Type.Null()]);
const Iso = (description: string) => Type.String({ format: 'date-time', description });

/** At most this many buckets per history answer (a chart is not wider). */
export const MAX_BUCKETS = 2000;

export const DeviceQuery = Type.Object({
  q: Type.Optional(Type.String({ maxLength: 100, description: 'substring of the id, name, address or component code (case-insensitive)' })),
  kind: Type.Optional(Type.String({ maxLength: 64, description: 'device kind, e.g. water-level' })),
  status: Type.Optional(StringEnum(DEVICE_STATUSES)),
  unit: Type.Optional(Type.String({ maxLength: 64, description: 'owner or maintainer unit' })),
  district: Type.Optional(Type.String({ maxLength: 16, description: 'county code (first 6 digits of the component code)' })),
  hasOpenCases: Type.Optional(Type.Boolean({ description: 'only devices with (true) or without (false) open cases the caller may see' })),
  gateway: Type.Optional(Type.String({ maxLength: 64, description: 'edge gateway id' })),
  profile: Type.Optional(Type.String({ maxLength: 64, description: 'device profile id' })),
  retired: Type.Optional(Type.Boolean({ description: 'retired devices (true) instead of those in service (default)' })),
  limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 1000, description: 'a page of at most this many, in id order (all when omitted)' })),
  cursor: Type.Optional(Type.String({ maxLength: 200, description: 'nextCursor of the previous page' })),
}, { additionalProperties: false });

export const HistoryQuery = Type.Object({
  from: Type.Optional(Iso('inclusive lower bound of the measurement time (ISO 8601, e.g. 2026-09-14T06:00:00Z); with buckets/step: default `to` minus 24 h')),
  to: Type.Optional(Iso('exclusive upper bound of the measurement time (ISO 8601); with buckets/step: default now')),
  limit: Type.Integer({ minimum: 1, maximum: 10000, default: 500, description: 'raw answer only: at most this many readings' }),
  buckets: Type.Optional(Type.Integer({ minimum: 1, description: `aggregate into this many equal buckets (at most ${MAX_BUCKETS})` })),
  step: Type.Optional(Type.Integer({ minimum: 1, description: `aggregate into buckets of this many milliseconds (at most ${MAX_BUCKETS} buckets)` })),
}, { additionalProperties: false });

export const Bucket = Type.Object({
  t: Iso('bucket start'),
  min: Type.Number(),
  max: Type.Number(),
  mean: Type.Number(),
  count: Type.Integer({ description: 'numeric values of the point in the bucket' }),
});

export const ReadingSeries = Type.Object({
  device: Type.String(),
  from: Iso('inclusive'),
  to: Iso('exclusive'),
  stepMs: Type.Integer(),
  series: Type.Record(Type.String(), Type.Array(Bucket), { description: 'per numeric point, the buckets holding a value, oldest first' }),
});
export type ReadingSeries = Static<typeof ReadingSeries>;

export const DeviceHealth = Type.Object({
  device: Type.String(),
  gateway: Type.Object({
    id: Type.String(),
    online: Type.Boolean({ description: 'its last birth/death certificate said online' }),
    lastSeen: Nullable(Iso('the newest of its state, its health report and its readings')),
    mode: Nullable(Type.String({ description: 'poll mode from its last health report (normal or fast)' })),
  }),
  reportedAt: Nullable(Iso('when the cloud received the gateway\'s last health report (kept in memory: none after a cloud restart until the next report)')),
  breaker: Nullable(Type.String({ description: 'the device\'s Modbus breaker: closed, open (backed off) or half-open (probing)' })),
  faults: Type.Record(Type.String(), Type.Integer(), { description: 'the device\'s poll fault counters since the edge started (timeout, crc, exception...)' }),
  consecutiveFaults: Nullable(Type.Integer()),
  lastFault: Nullable(Type.String()),
  outbox: Type.Object({
    depth: Nullable(Type.Integer({ description: 'readings on the gateway not yet acknowledged by the broker' })),
    oldestAgeMs: Nullable(Type.Integer({ description: 'with a backlog: at most this old, the time since the measurement of the newest reading the cloud holds from the gateway (the backlog is newer); null without a backlog or a reading' })),
  }),
});

export const Gateway = Type.Object({
  id: Type.String(),
  name: Type.String(),
  online: Type.Boolean(),
  lastSeen: Nullable(Iso('the newest of its state, its health report and its readings')),
  mode: Nullable(Type.String()),
  outboxDepth: Nullable(Type.Integer()),
  devices: Type.Integer(),
});
/** A bare array, as the helpers' contract for the console fixes it (other lists are `{items}`). */
export const GatewayList = Type.Array(Gateway);

export const ThresholdLine = Type.Object({
  id: Type.String(),
  hazard: Type.String(),
  point: Type.String(),
  op: Type.String({ description: '>, < or == (flags)' }),
  value: Type.Union([Type.Number(), Type.Boolean()]),
  severity: StringEnum(SEVERITIES),
  class: CaseClassT,
});
export const Thresholds = Type.Object({
  device: Type.String(),
  inForce: Type.Union(CityModeT.anyOf, { description: 'which variant the rules use now (the city\'s mode)' }),
  normal: Type.Array(ThresholdLine),
  emergency: Type.Array(ThresholdLine, { description: 'the same rules at their emergency limits (a rule without one keeps its normal limit)' }),
  ranges: Type.Array(Type.Object({ id: Type.String(), point: Type.String(), min: Type.Number(), max: Type.Number() }), { description: 'what the sensor can measure; outside is implausible' }),
});
