import { Type, type Static, type TSchema } from '@sinclair/typebox';
import { PointValue } from '../../lib/messages.ts';
import { CaseClassT, CaseSourceT, DEVICE_STATUSES, SEVERITIES, SeverityT } from '../../lib/vocabulary.ts';
import { CASE_STATES } from '../workflow.ts';

/** TypeBox schemas of the REST API: validation, types and the OpenAPI document from one source. */

const Nullable = <T extends TSchema>(t: T) => Type.Union([t, Type.Null()]);
const Iso = (description: string) => Type.String({ format: 'date-time', description });

export const ErrorReply = Type.Object({
  statusCode: Type.Integer(),
  code: Type.String({ description: 'stable machine code, e.g. CS_CLOUD_AUTH_MISSING' }),
  error: Type.String(),
  message: Type.String(),
}, { $id: 'ErrorReply', description: 'Every error answer' });

export const Location = Type.Object({
  lat: Type.Number(),
  lon: Type.Number(),
  address: Nullable(Type.String()),
});

export const Values = Type.Record(Type.String(), PointValue);

/** A string enum as JSON Schema `enum` (not anyOf of consts): one clear error naming the allowed values. */
export const StringEnum = <T extends readonly string[]>(values: T, description?: string) =>
  Type.Unsafe<T[number]>({ type: 'string', enum: [...values], ...(description ? { description } : {}) });

export const CaseState = StringEnum(CASE_STATES);

export const Milestone = Type.Object({
  name: Type.String({ description: 'e.g. on-site, made-safe' }),
  due: Nullable(Iso('sub-deadline; null for a milestone the case\'s category does not set but the crew recorded')),
  reachedAt: Nullable(Iso('when the crew reported it reached (`on-site`, `made-safe` actions)')),
});

export const PHOTO_FLAGS = ['taken-before-case', 'far-from-asset'] as const;

export const Photo = Type.Object({
  id: Type.String({ description: 'sha256 hex of the bytes' }),
  url: Type.String({ description: '/api/photos/<id>' }),
  type: Type.String({ description: 'image/jpeg, image/png or image/webp, from the bytes' }),
  size: Type.Integer(),
  takenAt: Nullable(Iso('EXIF DateTimeOriginal (its offset, else Asia/Shanghai)')),
  lat: Nullable(Type.Number()),
  lon: Nullable(Type.Number()),
  stage: Type.String({ description: '`upload`, or the action that cited it (handle, note, rework)' }),
  flags: Type.Array(StringEnum(PHOTO_FLAGS), { description: 'taken-before-case: EXIF time before the case opened; far-from-asset: EXIF GPS farther from the asset than the limit' }),
  uploadedAt: Iso('upload time'),
  by: Type.String({ description: 'who uploaded it' }),
});
export const PhotoUpload = Type.Object({ photos: Type.Array(Photo) });

export const ExtensionRequest = Type.Object({
  reason: Type.String(),
  until: Nullable(Iso('the deadline asked for, if any')),
  at: Iso('when asked'),
  by: Type.String({ description: 'who asked' }),
}, { description: 'a crew\'s pending extension request; a commander approves it (extend) or refuses it (refuse-extension)' });

export const Verification = Type.Object({
  inRange: Type.Boolean({ description: 'no alarm of the case\'s hazards is active at the asset' }),
  backSince: Nullable(Iso('when the asset\'s readings came back in range (the last alarm cleared); null when none ever cleared')),
  windowMs: Type.Integer({ description: 'how long they must stay in range before verification (workflow.verifyClearMs)' }),
  ready: Type.Boolean({ description: 'verify would pass the sensor check now' }),
}, { description: 'for handled cases: the sensor check the verify action enforces, as it stands now' });

export const Case = Type.Object({
  id: Type.String({ description: 'e.g. C-20261125-0001' }),
  device: Type.String(),
  hazard: Type.String({ description: 'the hazard that opened the case' }),
  hazards: Type.Array(Type.String(), { description: 'every hazard joined in this case (related hazards at one asset merge)' }),
  class: CaseClassT,
  severity: SeverityT,
  state: CaseState,
  unit: Type.String({ description: 'responsible unit' }),
  title: Type.String(),
  description: Type.String(),
  openedAt: Iso('registration time'),
  updatedAt: Iso('last change'),
  deadline: Iso('absolute deadline; urgent cases are due at most 12 h after registration'),
  handledAt: Nullable(Iso('when the crew last reported it handled; null unless handled or closed')),
  overdue: Type.Boolean({ description: 'running (registered, dispatched, accepted) past its deadline' }),
  milestones: Type.Array(Milestone),
  emergency: Type.Boolean({ description: 'under the 12-hour emergency cap (urgent class, or registered in emergency mode)' }),
  emergencyPeriod: Type.Union([Type.Integer(), Type.Null()], { description: 'the emergency period (mode epoch) the case was registered or tightened in; kept after the mode ends, for evaluation' }),
  breachCount: Type.Integer(),
  reworkCount: Type.Integer(),
  extensionCount: Type.Integer(),
  escalationLevel: Type.Integer({ description: '0 crew, 1 the unit\'s duty leader, 2 the command centre' }),
  lastValue: Nullable(PointValue),
  location: Location,
  grid: Nullable(Type.String()),
  componentCode: Type.String(),
  extensionRequest: Nullable(ExtensionRequest),
  source: CaseSourceT,
  category: Nullable(Type.String({ description: 'catalogue category code (GB/T 30428.2 minor class; GET /api/catalogue)' })),
  reporter: Nullable(Type.String({ description: 'who registered a person\'s case (user:NAME or token:ID); null for sensor cases' })),
  selfCorrected: Type.Boolean({ description: 'an inspector fixed it on the spot (自查自纠): registered and closed in one step' }),
  district: Nullable(Type.String({ description: 'county code (6 digits) of the component or grid code' })),
  photos: Type.Array(Photo),
  verification: Type.Optional(Verification),
});
export type Case = Static<typeof Case>;

export const HistoryEntry = Type.Object({
  seq: Type.Integer(),
  at: Iso('when'),
  action: Type.String(),
  actor: Type.String(),
  role: Type.String(),
  fromState: Nullable(Type.String()),
  toState: Nullable(Type.String()),
  note: Nullable(Type.String()),
  reason: Nullable(Type.String()),
  evidence: Type.Array(Type.String()),
  details: Nullable(Type.Record(Type.String(), Type.Unknown())),
});

export const Alarm = Type.Object({
  id: Type.String(),
  device: Type.String(),
  hazard: Type.String(),
  rule: Type.String(),
  severity: Type.String(),
  class: Type.String(),
  point: Nullable(Type.String()),
  value: Nullable(PointValue),
  raisedAt: Iso('raised'),
  clearedAt: Nullable(Iso('back in range')),
  acknowledgedAt: Nullable(Iso('acknowledged')),
  acknowledgedBy: Nullable(Type.String()),
  caseId: Nullable(Type.String()),
  active: Type.Boolean(),
  /** Raised by the cloud's rules, or by an edge's local alarm (README.md "Topics"). */
  origin: Type.Union([Type.Literal('cloud'), Type.Literal('edge')]),
});
export const AlarmList = Type.Object({ items: Type.Array(Alarm) });
export const AlarmQuery = Type.Object({
  active: Type.Optional(Type.Boolean()),
  device: Type.Optional(Type.String({ maxLength: 64 })),
  limit: Type.Integer({ minimum: 1, maximum: 1000, default: 100 }),
}, { additionalProperties: false });

export const CaseDetail = Type.Composite([Case, Type.Object({
  history: Type.Array(HistoryEntry, { description: 'the case\'s history, oldest first, one page (`limit`, `cursor`)' }),
  historyNextCursor: Nullable(Type.String({ description: 'pass as `cursor` for the next page of the history' })),
  alarms: Type.Array(Alarm),
  allowedActions: Type.Array(Type.String(), { description: 'actions the case\'s state allows now' }),
  readings: Type.Array(Type.Object({ ts: Iso('measurement time'), values: Values, quality: Type.String() }), { description: 'the asset\'s readings since the first alarm, oldest first (at most 500)' }),
})]);

export const CaseDetailQuery = Type.Object({
  limit: Type.Integer({ minimum: 1, maximum: 1000, default: 100, description: 'history entries per page' }),
  cursor: Type.Optional(Type.String({ maxLength: 200, description: 'the `historyNextCursor` of the previous page' })),
}, { additionalProperties: false });

export const ActionBody = Type.Object({
  reason: Type.Optional(Type.String({ maxLength: 2000, description: 'required for rework, extend, defer, void, reopen, request-extension, refuse-extension' })),
  notes: Type.Optional(Type.String({ maxLength: 4000, description: 'required for note' })),
  evidence: Type.Optional(Type.Array(Type.String({ maxLength: 500 }), { maxItems: 20, description: 'evidence references: photo URLs, file ids' })),
  deadline: Type.Optional(Iso('extend: the new deadline')),
  unit: Type.Optional(Type.String({ maxLength: 64, description: 'dispatch: the responsible unit' })),
  until: Type.Optional(Iso('extend (same as deadline), request-extension: the new deadline asked for')),
  photos: Type.Optional(Type.Array(Type.String({ pattern: '^[0-9a-f]{64}$' }), { maxItems: 20, description: 'handle, note, rework: ids of photos uploaded to this case first' })),
  actionId: Type.Optional(Type.String({ minLength: 8, maxLength: 64, pattern: '^[A-Za-z0-9_-]+$', description: 'client-chosen id: a resend with the same id answers the case as it is now (header x-cs-replayed: 1) and applies nothing' })),
}, { additionalProperties: false });

export const CaseList = Type.Object({
  items: Type.Array(Case),
  nextCursor: Nullable(Type.String({ description: 'pass as `cursor` for the next page' })),
});

export const CaseQuery = Type.Object({
  state: Type.Optional(CaseState),
  overdue: Type.Optional(Type.Boolean({ description: 'only running cases past their deadline' })),
  emergency: Type.Optional(Type.Boolean()),
  area: Type.Optional(Type.String({ maxLength: 32, description: 'grid cell code or prefix (e.g. 440402001)' })),
  class: Type.Optional(CaseClassT),
  unit: Type.Optional(Type.String({ maxLength: 64 })),
  hazard: Type.Optional(Type.String({ maxLength: 64 })),
  device: Type.Optional(Type.String({ maxLength: 64 })),
  extensionRequested: Type.Optional(Type.Boolean({ description: 'only cases with (true) or without (false) a pending extension request' })),
  source: Type.Optional(CaseSourceT),
  category: Type.Optional(Type.String({ maxLength: 32 })),
  district: Type.Optional(Type.String({ maxLength: 12 })),
  limit: Type.Integer({ minimum: 1, maximum: 1000, default: 100 }),
  cursor: Type.Optional(Type.String({ maxLength: 200 })),
}, { additionalProperties: false });

/** Whether readings come: online, offline (its gateway is, or silent three polls), never seen. */
export const DeviceLink = Type.Union([Type.Literal('online'), Type.Literal('offline'), Type.Literal('never-seen')]);

export const Device = Type.Object({
  id: Type.String(),
  name: Type.String(),
  profile: Type.String(),
  kind: Type.String(),
  componentCode: Type.String(),
  location: Location,
  grid: Nullable(Type.String()),
  ownerUnit: Type.String(),
  maintainerUnit: Type.String(),
  gateway: Type.String(),
  district: Type.String({ description: 'county code: the first 6 digits of the component code' }),
  status: StringEnum(DEVICE_STATUSES, 'offline: its gateway is offline; silent: no reading for longer than its no-data rule allows (or none yet); alarm: an alarm is active; else normal'),
  tier: Nullable(StringEnum(SEVERITIES, 'the highest severity its latest values breach under the thresholds in force (emergency ones in emergency mode)')),
  link: DeviceLink,
  lastSeen: Nullable(Iso('when the cloud last received a reading')),
  latest: Nullable(Type.Object({
    seq: Type.Integer(),
    ts: Iso('measurement time of the newest reading'),
    values: Values,
    quality: Type.String(),
  })),
  openCases: Type.Integer(),
  /** From the edge's last health report (cs/v1/{gw}/health); null before one arrived. */
  health: Nullable(Type.Object({
    reportedAt: Iso('when the cloud received the report'),
    gatewayMode: Type.String({ description: 'normal or fast (emergency) polling' }),
    outboxDepth: Type.Integer({ description: 'readings on the gateway not yet acknowledged by the broker' }),
    slave: Nullable(Type.Object({
      breaker: Type.String({ description: 'closed, open (backed off) or half-open (probing)' }),
      ok: Type.Integer(), timeout: Type.Integer(), crc: Type.Integer(), exception: Type.Integer(),
      wrongUnit: Type.Integer(), truncated: Type.Integer(), consecutiveFaults: Type.Integer(),
      lastFault: Nullable(Type.String()),
    })),
  })),
  retiredAt: Type.Optional(Iso('when the device was retired from the registry (its history and cases stay readable)')),
});
export type Device = Static<typeof Device>;

export const DeviceList = Type.Object({
  items: Type.Array(Device),
  nextCursor: Type.Optional(Nullable(Type.String({ description: 'with limit: pass as cursor for the next page; null on the last page' }))),
});

export const IdParams = Type.Object({ id: Type.String({ minLength: 1, maxLength: 64 }) });

export const ReadingQuery = Type.Object({
  from: Type.Optional(Iso('inclusive lower bound of the measurement time (ISO 8601, e.g. 2026-09-14T06:00:00Z)')),
  to: Type.Optional(Iso('exclusive upper bound of the measurement time (ISO 8601)')),
  limit: Type.Integer({ minimum: 1, maximum: 10000, default: 500 }),
}, { additionalProperties: false });

export const ReadingItem = Type.Object({
  gateway: Type.String(),
  seq: Type.Integer(),
  ts: Iso('measurement time'),
  receivedAt: Iso('when the cloud stored it'),
  values: Values,
  quality: Type.String(),
  historical: Type.Boolean(),
});

export const ReadingList = Type.Object({ device: Type.String(), items: Type.Array(ReadingItem) });

export const Unit = Type.Object({
  id: Type.String(),
  name: Type.String(),
  dutyContact: Nullable(Type.String()),
  dutyLeader: Nullable(Type.String()),
  members: Type.Array(Type.String()),
  openCases: Type.Integer(),
  overdueCases: Type.Integer(),
});
export const UnitList = Type.Object({ items: Type.Array(Unit) });

export const Health = Type.Object({
  status: Type.Union([Type.Literal('ok'), Type.Literal('degraded')]),
  db: Type.Union([Type.Literal('ok'), Type.Literal('error')]),
  mqtt: Type.Union([Type.Literal('connected'), Type.Literal('disconnected'), Type.Literal('disabled')]),
});

/** The error answers every authenticated route may give. */
export const authErrors = {
  400: ErrorReply,
  401: ErrorReply,
  403: ErrorReply,
};
