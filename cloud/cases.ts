import { randomBytes } from 'node:crypto';
import { sql, type Kysely, type Selectable } from 'kysely';
import type { Logger } from '../lib/log.ts';
import type { Device } from '../devices/district.ts';
import { CsError } from '../lib/errors.ts';
import { CloudErrors } from './errors.ts';
import type { Calendar } from './calendar.ts';
import {
  categoryFor, classRank, mergeKeyFor, scheduleFor, severityRank, URGENT_CAP_HOURS, EMERGENCY_CAP_HOURS,
  type Categories, type CaseClass, type Severity,
} from './categories.ts';
import { describeBreach, type Breach } from './rules.ts';
import { routeCase, type Routing } from './routing.ts';
import { OPEN_CASE_PREDICATE } from './db/migrations.ts';
import type { AlarmsTable, CaseHistoryTable, CasesTable, DB } from './db/schema.ts';
import { illegalMessage, nextState, ACTION_ROLES, NEEDS_REASON, type CaseAction, type CaseState } from './workflow.ts';
import type { Principal } from './tokens.ts';

export { CASE_STATES, type CaseState } from './workflow.ts';

/**
 * Sensor cases: a breach registers and auto-dispatches a case, or updates the one open case of
 * its (device, merge key): related hazards at one asset (cover open, water in the well, gas) join
 * one case. The database enforces "one open case" with partial unique indexes; the insert says
 * ON CONFLICT DO NOTHING and, when it loses a race, falls back to the update. A recurrence within
 * the reopen window after closing reopens the closed case as rework. People move cases through
 * the workflow with `applyAction`; every change appends to the case's history.
 */

export const SYSTEM_ACTOR = { actor: 'citysteward', role: 'system' } as const;
const HOUR = 3_600_000;

export type CaseRow = Selectable<CasesTable>;
export type HistoryRow = Selectable<CaseHistoryTable>;
export type AlarmRow = Selectable<AlarmsTable>;

export interface CaseChange {
  action: 'opened' | 'updated' | 'reopened';
  caseId: string;
  hazard: string;
  severity: string;
  unit: string;
  state: string;
  /** A related hazard joined this case with this breach. */
  joined?: boolean;
}

/** Workflow settings (docs/domain.md#the-case). */
export interface WorkflowPolicy {
  /** Verification needs the asset's readings back in range for at least this long. */
  verifyClearMs: number;
  /** The same hazard within this time after closing reopens the case as rework. */
  reopenWithinMs: number;
  /** Sensor cases are dispatched as they are registered; false leaves them registered for an operator to dispatch. */
  autoDispatch: boolean;
}

export const DEFAULT_WORKFLOW: WorkflowPolicy = { verifyClearMs: 10 * 60_000, reopenWithinMs: 24 * HOUR, autoDispatch: true };

/** What case code needs besides the transaction: the data that drives cases. */
export interface CaseEnv {
  categories: Categories;
  calendar: Calendar;
  routing: Routing;
  workflow: WorkflowPolicy;
}

export interface BreachContext {
  device: Device;
  /** Device kind (profile kind), for routing. */
  kind: string;
  breach: Breach;
  env: CaseEnv;
  /** Registration time (the cloud's clock). */
  at: number;
  /** A historical (replayed) reading may update an open case but never opens one. */
  historical: boolean;
  /** Emergency mode at the time of the breach. */
  emergency: boolean;
  /** The emergency period in force (mode epoch), kept on the case for evaluation. */
  emergencyEpoch?: number | null;
  log: Logger;
}

function shanghaiDay(at: number): string {
  return new Date(at + 8 * HOUR).toISOString().slice(0, 10).replace(/-/g, '');
}

/** `C-YYYYMMDD-NNNN`, the day in Asia/Shanghai (UTC+8, no daylight saving). */
export function caseId(at: number, n: number): string {
  return `C-${shanghaiDay(at)}-${String(n).padStart(4, '0')}`;
}

async function nextCaseNumber(trx: Kysely<DB>, at: number): Promise<string> {
  const row = await trx.insertInto('case_counters').values({ day: shanghaiDay(at), n: 1 })
    .onConflict((oc) => oc.column('day').doUpdateSet({ n: sql`case_counters.n + 1` }))
    .returning('n').executeTakeFirstOrThrow();
  return caseId(at, Number(row.n));
}

export type HistoryInput = Pick<HistoryRow, 'at' | 'action' | 'actor' | 'role' | 'from_state' | 'to_state'> &
  Partial<Pick<HistoryRow, 'note' | 'reason' | 'evidence' | 'details'>>;

/** Appends to the append-only history (never updated or deleted). */
export async function appendHistory(trx: Kysely<DB>, caseId: string, entries: HistoryInput[]): Promise<void> {
  const last = await trx.selectFrom('case_history').select(sql<number>`coalesce(max(seq), 0)`.as('n'))
    .where('case_id', '=', caseId).executeTakeFirst();
  let seq = Number(last?.n ?? 0);
  await trx.insertInto('case_history').values(entries.map((e) => ({
    note: null, reason: null, evidence: null, details: null, ...e, case_id: caseId, seq: ++seq,
  }))).execute();
}

/** Applies one breach inside the caller's write transaction. */
export async function applyBreach(trx: Kysely<DB>, ctx: BreachContext): Promise<CaseChange | undefined> {
  for (let attempt = 0; attempt < 3; attempt++) {
    const updated = await updateOpenCase(trx, ctx);
    if (updated) return updated;
    if (ctx.historical) return undefined;
    const reopened = await reopenRecurrence(trx, ctx);
    if (reopened) return reopened;
    const opened = await openCase(trx, ctx);
    if (opened) return opened;
    // Lost a race: another worker opened it between our update and insert. Update it instead.
  }
  throw new CsError(CloudErrors.CASE_UPSERT_FAILED, `could not open or update the case of ${ctx.device.id}/${ctx.breach.hazard}`);
}

function capOf(cls: CaseClass, emergency: boolean): number {
  if (cls === 'urgent') return URGENT_CAP_HOURS * HOUR;
  if (emergency && cls !== 'device-health') return EMERGENCY_CAP_HOURS * HOUR;
  return Infinity;
}

async function updateOpenCase(trx: Kysely<DB>, ctx: BreachContext): Promise<CaseChange | undefined> {
  const { device, breach, at, env } = ctx;
  const key = mergeKeyFor(env.categories, breach.hazard, breach.class);
  // The UPDATE first: on PostgreSQL it locks the row, so what RETURNING gives is current.
  const row = await trx.updateTable('cases')
    .set({ breach_count: sql`breach_count + 1`, last_value: JSON.stringify(breach.value), updated_at: at })
    .where('device', '=', device.id)
    .where((eb) => eb.or([eb('merge_key', '=', key), eb('hazard', '=', breach.hazard)]))
    .where(OPEN_CASE_PREDICATE)
    .returning(['id', 'severity', 'class', 'state', 'opened_at', 'deadline_at', 'breach_count', 'emergency', 'hazards', 'milestones', 'unit'])
    .executeTakeFirst();
  if (!row) return undefined;
  const raise: Partial<CasesTable> = {};
  const notes = [`breach ${row.breach_count}: ${describeBreach(breach)}`];
  const hazards = parseList(row.hazards);
  let joined = false;
  let due = Number(row.deadline_at);
  if (!hazards.includes(breach.hazard)) {
    joined = true;
    hazards.push(breach.hazard);
    raise.hazards = JSON.stringify(hazards);
    const s = scheduleFor(categoryFor(env.categories, breach.hazard, breach.class), breach.class, at, { calendar: env.calendar, emergency: ctx.emergency });
    due = Math.min(due, s.deadline);
    notes.push(`joined hazard ${breach.hazard}`);
  }
  if (severityRank(breach.severity) > severityRank(row.severity)) {
    raise.severity = breach.severity;
    notes.push(`severity ${row.severity} -> ${breach.severity}`);
  }
  const cls = classRank(breach.class) > classRank(row.class) ? breach.class : (row.class as CaseClass);
  if (cls !== row.class) {
    const s = scheduleFor(categoryFor(env.categories, breach.hazard, breach.class), breach.class, at, { calendar: env.calendar, emergency: ctx.emergency });
    // The new class's limit runs from now, but never past the cap measured from registration.
    due = Math.min(due, s.deadline);
    raise.class = breach.class;
    notes.push(`class ${row.class} -> ${breach.class}`);
    if (s.milestones.length && parseList(row.milestones).length === 0) raise.milestones = JSON.stringify(s.milestones);
  }
  due = Math.min(due, Number(row.opened_at) + capOf(cls, ctx.emergency));
  if (cls === 'urgent' || (ctx.emergency && cls !== 'device-health')) {
    if (Number(row.emergency) !== 1) raise.emergency = 1;
  }
  if (due !== Number(row.deadline_at)) {
    raise.deadline_at = due;
    notes.push(`deadline ${new Date(due).toISOString()}`);
  }
  if (Object.keys(raise).length) {
    await trx.updateTable('cases').set(raise).where('id', '=', row.id).execute();
  }
  await appendHistory(trx, row.id, [{
    at, action: 'update', ...SYSTEM_ACTOR, from_state: row.state, to_state: row.state, note: notes.join('; '),
  }]);
  ctx.log.debug({ caseId: row.id, hazard: breach.hazard, breachCount: row.breach_count }, 'case updated by repeat breach');
  return { action: 'updated', caseId: row.id, hazard: breach.hazard, severity: raise.severity ?? row.severity, unit: row.unit, state: row.state, joined };
}

async function reopenRecurrence(trx: Kysely<DB>, ctx: BreachContext): Promise<CaseChange | undefined> {
  const { device, breach, at, env } = ctx;
  const key = mergeKeyFor(env.categories, breach.hazard, breach.class);
  const closed = await trx.selectFrom('cases').select(['id', 'closed_at', 'class', 'unit', 'severity'])
    .where('device', '=', device.id).where('merge_key', '=', key).where('state', '=', 'closed')
    .where('closed_at', '>=', at - env.workflow.reopenWithinMs)
    .orderBy('closed_at', 'desc').limit(1).executeTakeFirst();
  if (!closed) return undefined;
  const cls = classRank(breach.class) > classRank(closed.class) ? breach.class : (closed.class as CaseClass);
  const s = scheduleFor(categoryFor(env.categories, breach.hazard, cls), cls, at, { calendar: env.calendar, emergency: ctx.emergency });
  const severity = severityRank(breach.severity) > severityRank(closed.severity) ? breach.severity : closed.severity;
  const r = await trx.updateTable('cases').set({
    state: 'dispatched', closed_at: null, accepted_at: null, handled_at: null, dispatched_at: at, updated_at: at,
    rework_count: sql`rework_count + 1`, breach_count: sql`breach_count + 1`, last_value: JSON.stringify(breach.value),
    class: cls, severity, deadline_at: s.deadline, milestones: JSON.stringify(s.milestones),
    emergency: s.emergency ? 1 : 0, escalation_level: 0, reminded_at: null, escalated_at: null,
    ...(ctx.emergency && ctx.emergencyEpoch != null ? { emergency_epoch: ctx.emergencyEpoch } : {}),
  }).where('id', '=', closed.id).where('state', '=', 'closed').executeTakeFirst();
  if (Number(r.numUpdatedRows) === 0) return undefined;
  const hours = Math.round((at - Number(closed.closed_at)) / 60_000) / 60;
  await appendHistory(trx, closed.id, [{
    at, action: 'reopen', ...SYSTEM_ACTOR, from_state: 'closed', to_state: 'dispatched',
    reason: `recurrence ${hours} h after closing (within ${env.workflow.reopenWithinMs / HOUR} h): rework`,
    note: describeBreach(breach), details: JSON.stringify({ rework: true, deadline: new Date(s.deadline).toISOString() }),
  }]);
  ctx.log.child({ caseId: closed.id }).info({ hazard: breach.hazard }, 'case reopened by recurrence (rework)');
  return { action: 'reopened', caseId: closed.id, hazard: breach.hazard, severity, unit: closed.unit, state: 'dispatched' };
}

async function openCase(trx: Kysely<DB>, ctx: BreachContext): Promise<CaseChange | undefined> {
  const { device, breach, at, env } = ctx;
  const category = categoryFor(env.categories, breach.hazard, breach.class);
  const unit = routeCase(env.routing, { hazard: breach.hazard, cls: breach.class, category, device, kind: ctx.kind });
  const schedule = scheduleFor(category, breach.class, at, { calendar: env.calendar, emergency: ctx.emergency });
  const dispatch = env.workflow.autoDispatch;
  const id = await nextCaseNumber(trx, at);
  const inserted = await trx.insertInto('cases').values({
    id,
    device: device.id,
    hazard: breach.hazard,
    class: breach.class,
    severity: breach.severity,
    state: dispatch ? 'dispatched' : 'registered',
    unit,
    title: `${category.title}: ${device.name}`,
    description: `Sensor ${device.id} breached ${describeBreach(breach)}.`,
    opened_at: at,
    updated_at: at,
    deadline_at: schedule.deadline,
    emergency: schedule.emergency ? 1 : 0,
    emergency_epoch: ctx.emergency ? (ctx.emergencyEpoch ?? null) : null,
    breach_count: 1,
    last_value: JSON.stringify(breach.value),
    threshold_id: breach.thresholdId,
    point: breach.point,
    lat: device.lat,
    lon: device.lon,
    address: device.address ?? null,
    component_code: device.componentCode,
    merge_key: mergeKeyFor(env.categories, breach.hazard, breach.class),
    hazards: JSON.stringify([breach.hazard]),
    milestones: JSON.stringify(schedule.milestones),
    grid: device.grid ?? null,
    dispatched_at: dispatch ? at : null,
    accepted_at: null,
    handled_at: null,
    closed_at: null,
    resume_state: null,
    rework_count: 0,
    extension_count: 0,
    escalation_level: 0,
    reminded_at: null,
    escalated_at: null,
  })
    // No target: any of the "one open case" indexes (device+hazard, device+merge key) makes it a no-op.
    .onConflict((oc) => oc.doNothing())
    .returning('id').executeTakeFirst();
  if (!inserted) return undefined;
  await appendHistory(trx, id, [
    { at, action: 'register', ...SYSTEM_ACTOR, from_state: null, to_state: 'registered', note: `auto-registered: ${describeBreach(breach)}` },
    ...(dispatch ? [{ at, action: 'dispatch', ...SYSTEM_ACTOR, from_state: 'registered', to_state: 'dispatched', note: `auto-dispatched to ${unit}` }] : []),
  ]);
  ctx.log.child({ caseId: id }).info({ hazard: breach.hazard, unit, severity: breach.severity }, 'case opened');
  return { action: 'opened', caseId: id, hazard: breach.hazard, severity: breach.severity, unit, state: dispatch ? 'dispatched' : 'registered' };
}

// ---- alarms ------------------------------------------------------------------------------------

export function newAlarmId(): string {
  return `AL-${randomBytes(6).toString('hex')}`;
}

/** Raises the one active alarm of (device, hazard); undefined when it is already active. */
export async function raiseAlarm(trx: Kysely<DB>, device: string, b: Breach, at: number, caseId: string | null): Promise<AlarmRow | undefined> {
  const row = await trx.insertInto('alarms').values({
    id: newAlarmId(), device, hazard: b.hazard, rule_id: b.thresholdId, severity: b.severity, class: b.class,
    point: b.point, value: JSON.stringify(b.value), raised_at: at, cleared_at: null, acked_at: null, acked_by: null, case_id: caseId,
  }).onConflict((oc) => oc.doNothing()).returningAll().executeTakeFirst();
  return row;
}

/** Links the active alarm of (device, hazard) to a case. */
export async function linkAlarm(trx: Kysely<DB>, device: string, hazard: string, caseId: string): Promise<void> {
  await trx.updateTable('alarms').set({ case_id: caseId }).where('device', '=', device).where('hazard', '=', hazard)
    .where('cleared_at', 'is', null).where((eb) => eb.or([eb('case_id', 'is', null), eb('case_id', '<>', caseId)])).execute();
}

export async function clearAlarm(trx: Kysely<DB>, device: string, hazard: string, at: number): Promise<AlarmRow | undefined> {
  return trx.updateTable('alarms').set({ cleared_at: at }).where('device', '=', device).where('hazard', '=', hazard)
    .where('cleared_at', 'is', null).returningAll().executeTakeFirst();
}

// ---- people's actions --------------------------------------------------------------------------

export interface ActionBody {
  reason?: string;
  notes?: string;
  evidence?: string[];
  /** For `extend`: the new deadline (ISO 8601). */
  deadline?: string;
  /** For `dispatch`: another responsible unit. */
  unit?: string;
}

export interface ActionInput {
  id: string;
  action: CaseAction;
  principal: Principal;
  body: ActionBody;
  at: number;
  env: CaseEnv;
  knownUnits: ReadonlySet<string>;
}

/** Reads a case as the principal may see it: a crew sees only its unit's cases (404 otherwise). */
export async function visibleCase(db: Kysely<DB>, id: string, principal: Principal): Promise<CaseRow> {
  const row = await db.selectFrom('cases').selectAll().where('id', '=', id).executeTakeFirst();
  if (!row || (principal.role === 'crew' && row.unit !== principal.unit)) {
    throw new CsError(CloudErrors.CASE_NOT_FOUND, `no case "${id}"`);
  }
  return row;
}

/** Runs one workflow action inside the caller's write transaction; returns the case after it. */
export async function applyAction(trx: Kysely<DB>, input: ActionInput): Promise<{ row: CaseRow; from: CaseState; to: CaseState }> {
  const { id, action, principal, body, at, env } = input;
  const row = await visibleCase(trx, id, principal);
  if (!ACTION_ROLES[action].includes(principal.role)) {
    throw new CsError(CloudErrors.FORBIDDEN, `role ${principal.role} may not ${action} a case (allowed: ${ACTION_ROLES[action].join(', ')})`);
  }
  const from = row.state as CaseState;
  const to = nextState(from, action, row.resume_state);
  if (!to) throw new CsError(CloudErrors.CASE_ILLEGAL_ACTION, illegalMessage(id, from, action), { state: from, action });
  if (NEEDS_REASON.has(action) && !body.reason?.trim()) {
    throw new CsError(CloudErrors.CASE_BAD_ACTION, `${action} needs a reason (body field "reason")`);
  }
  const set: Partial<CasesTable> = { state: to, updated_at: at };
  const details: Record<string, unknown> = {};
  switch (action) {
    case 'dispatch':
      if (body.unit !== undefined) {
        if (!input.knownUnits.has(body.unit)) throw new CsError(CloudErrors.CASE_BAD_ACTION, `unknown unit "${body.unit}"`);
        set.unit = body.unit;
        details.unit = body.unit;
      }
      set.dispatched_at = at;
      break;
    case 'accept':
      set.accepted_at = at;
      break;
    case 'handle':
      set.handled_at = at;
      break;
    case 'verify':
      await checkSensorClear(trx, row, at, env.workflow);
      set.closed_at = at;
      break;
    case 'rework':
      set.rework_count = Number(row.rework_count) + 1;
      set.accepted_at = null;
      set.handled_at = null;
      set.dispatched_at = at;
      details.rework = true;
      break;
    case 'extend': {
      const due = body.deadline === undefined ? NaN : Date.parse(body.deadline);
      if (!Number.isFinite(due)) throw new CsError(CloudErrors.CASE_BAD_ACTION, 'extend needs a new deadline (body field "deadline", ISO 8601)');
      if (due <= Number(row.deadline_at)) {
        throw new CsError(CloudErrors.CASE_BAD_ACTION, `the new deadline ${new Date(due).toISOString()} is not after the current one ${new Date(Number(row.deadline_at)).toISOString()}`);
      }
      set.deadline_at = due;
      set.extension_count = Number(row.extension_count) + 1;
      set.reminded_at = null;
      set.escalation_level = 0;
      Object.assign(details, { from: new Date(Number(row.deadline_at)).toISOString(), to: new Date(due).toISOString(), approver: principal.tokenId });
      break;
    }
    case 'defer':
      set.resume_state = from;
      break;
    case 'void':
      set.closed_at = at;
      break;
    case 'reopen':
      if (from === 'closed') {
        const other = await trx.selectFrom('cases').select('id').where('device', '=', row.device)
          .where((eb) => eb.or([eb('merge_key', '=', row.merge_key), eb('hazard', '=', row.hazard)]))
          .where(OPEN_CASE_PREDICATE).where('id', '<>', row.id).executeTakeFirst();
        if (other) throw new CsError(CloudErrors.CASE_ALREADY_OPEN, `cannot reopen case ${id}: case ${other.id} is already open for ${row.device}/${row.merge_key}`);
        set.rework_count = Number(row.rework_count) + 1;
        set.closed_at = null;
        set.accepted_at = null;
        set.handled_at = null;
        set.dispatched_at = at;
        details.rework = true;
      }
      set.resume_state = null;
      break;
  }
  // Optimistic: the state must still be what we read (another worker may have moved it).
  const r = await trx.updateTable('cases').set(set).where('id', '=', id).where('state', '=', from).executeTakeFirst();
  if (Number(r.numUpdatedRows) === 0) {
    const now = await trx.selectFrom('cases').select('state').where('id', '=', id).executeTakeFirstOrThrow();
    throw new CsError(CloudErrors.CASE_ILLEGAL_ACTION, illegalMessage(id, now.state as CaseState, action));
  }
  await appendHistory(trx, id, [{
    at, action, actor: principal.tokenId, role: principal.role, from_state: from, to_state: to,
    note: body.notes ?? null, reason: body.reason ?? null,
    evidence: body.evidence?.length ? JSON.stringify(body.evidence) : null,
    details: Object.keys(details).length ? JSON.stringify(details) : null,
  }]);
  const after = await trx.selectFrom('cases').selectAll().where('id', '=', id).executeTakeFirstOrThrow();
  return { row: after, from, to };
}

/**
 * Sensor-verified closure (docs/domain.md#the-case): refused while an alarm of the case's hazards is
 * active at the asset, or cleared for less than the window.
 */
async function checkSensorClear(trx: Kysely<DB>, row: CaseRow, at: number, policy: WorkflowPolicy): Promise<void> {
  const hazards = parseList(row.hazards);
  if (!hazards.length) hazards.push(row.hazard);
  const active = await trx.selectFrom('alarms').select(['id', 'hazard', 'raised_at']).where('device', '=', row.device)
    .where('hazard', 'in', hazards).where('cleared_at', 'is', null).executeTakeFirst();
  if (active) {
    throw new CsError(CloudErrors.CASE_SENSOR_NOT_CLEAR,
      `cannot verify case ${row.id}: ${row.device} is still out of range for ${active.hazard} (alarm ${active.id} since ${new Date(Number(active.raised_at)).toISOString()})`);
  }
  const last = await trx.selectFrom('alarms').select(sql<number | null>`max(cleared_at)`.as('t')).where('device', '=', row.device)
    .where('hazard', 'in', hazards).executeTakeFirst();
  const clearedAt = last?.t == null ? undefined : Number(last.t);
  if (clearedAt !== undefined && at - clearedAt < policy.verifyClearMs) {
    throw new CsError(CloudErrors.CASE_SENSOR_NOT_CLEAR,
      `cannot verify case ${row.id}: ${row.device} has been back in range only since ${new Date(clearedAt).toISOString()} (${Math.round((at - clearedAt) / 1000)} s); verification needs ${Math.round(policy.verifyClearMs / 1000)} s`);
  }
}

// ---- JSON --------------------------------------------------------------------------------------

export interface CaseJson {
  id: string;
  device: string;
  hazard: string;
  hazards: string[];
  class: CaseClass;
  severity: Severity;
  state: CaseState;
  unit: string;
  title: string;
  description: string;
  openedAt: string;
  updatedAt: string;
  deadline: string;
  overdue: boolean;
  milestones: { name: string; due: string }[];
  emergency: boolean;
  /** The emergency period (mode epoch) the case was registered or tightened in; null otherwise. */
  emergencyPeriod: number | null;
  breachCount: number;
  reworkCount: number;
  extensionCount: number;
  escalationLevel: number;
  lastValue: number | boolean | string | null;
  location: { lat: number; lon: number; address: string | null };
  grid: string | null;
  componentCode: string;
}

const LIVE_STATES = new Set(['registered', 'dispatched', 'accepted']);

export function caseToJson(r: CaseRow, now?: number): CaseJson {
  return {
    id: r.id,
    device: r.device,
    hazard: r.hazard,
    hazards: parseList(r.hazards ?? '[]'),
    class: r.class as CaseClass,
    severity: r.severity as Severity,
    state: r.state as CaseState,
    unit: r.unit,
    title: r.title,
    description: r.description,
    openedAt: iso(r.opened_at),
    updatedAt: iso(r.updated_at),
    deadline: iso(r.deadline_at),
    overdue: now !== undefined && LIVE_STATES.has(r.state) && Number(r.deadline_at) < now,
    milestones: (JSON.parse(r.milestones ?? '[]') as { name: string; due: number }[]).map((m) => ({ name: m.name, due: iso(m.due) })),
    emergency: Number(r.emergency) === 1,
    emergencyPeriod: r.emergency_epoch == null ? null : Number(r.emergency_epoch),
    breachCount: Number(r.breach_count),
    reworkCount: Number(r.rework_count ?? 0),
    extensionCount: Number(r.extension_count ?? 0),
    escalationLevel: Number(r.escalation_level ?? 0),
    lastValue: parseJson(r.last_value),
    location: { lat: Number(r.lat), lon: Number(r.lon), address: r.address },
    grid: r.grid ?? null,
    componentCode: r.component_code,
  };
}

export function historyToJson(h: HistoryRow) {
  return {
    seq: Number(h.seq), at: iso(h.at), action: h.action, actor: h.actor, role: h.role, fromState: h.from_state, toState: h.to_state,
    note: h.note, reason: h.reason ?? null, evidence: h.evidence ? (JSON.parse(h.evidence) as string[]) : [],
    details: h.details ? (JSON.parse(h.details) as Record<string, unknown>) : null,
  };
}

export function alarmToJson(a: AlarmRow) {
  return {
    id: a.id, device: a.device, hazard: a.hazard, rule: a.rule_id, severity: a.severity, class: a.class, point: a.point,
    value: a.value === null ? null : parseJson(a.value), raisedAt: iso(a.raised_at), clearedAt: a.cleared_at === null ? null : iso(a.cleared_at),
    acknowledgedAt: a.acked_at === null ? null : iso(a.acked_at), acknowledgedBy: a.acked_by, caseId: a.case_id,
    active: a.cleared_at === null,
  };
}

export function iso(ms: number | string): string {
  return new Date(Number(ms)).toISOString();
}

function parseList(text: string): string[] {
  try {
    const v = JSON.parse(text) as unknown;
    return Array.isArray(v) ? v.map(String) : [];
  } catch {
    return [];
  }
}

function parseJson(text: string): number | boolean | string | null {
  try {
    return JSON.parse(text) as number | boolean | string;
  } catch {
    return null;
  }
}

export { type CaseAction } from './workflow.ts';
