import { sql, type Kysely } from 'kysely';
import { CsError } from '../../lib/errors.ts';
import { classRank, severityRank, type CaseClass, type Severity } from '../../lib/vocabulary.ts';
import { CloudErrors } from '../errors.ts';
import { capFor, categoryFor, mergeKeyFor, scheduleFor, underCap } from '../categories.ts';
import { describeBreach } from '../rules.ts';
import { routeCase } from '../routing.ts';
import { districtOf } from '../../devices/district.ts';
import { OPEN_CASE_PREDICATE } from '../db/migrations.ts';
import type { CasesTable, DB } from '../db/schema.ts';
import { nextCaseId } from './ids.ts';
import { appendHistory, SYSTEM_ACTOR } from './history.ts';
import { parseList } from './json.ts';
import { suppressedByVoid } from './limits.ts';
import type { BreachContext, CaseChange } from './policy.ts';

/**
 * The breach upsert: a breach registers and auto-dispatches a case, or updates the one open case
 * of its (device, merge key): related hazards at one asset (cover open, water in the well, gas)
 * join one case. The database enforces "one open case" with partial unique indexes; the insert
 * says ON CONFLICT DO NOTHING and, when it loses a race, falls back to the update. A recurrence
 * within the reopen window after closing reopens the closed case as rework (docs/domain.md#the-case).
 */

const HOUR = 3_600_000;

/** A lower class rank is more pressing (lib/vocabulary.ts). */
const morePressing = (a: CaseClass, b: CaseClass): boolean => classRank(a) < classRank(b);
const moreSevere = (a: Severity, b: Severity): boolean => severityRank(a) > severityRank(b);

/** Applies one breach inside the caller's write transaction. */
export async function applyBreach(trx: Kysely<DB>, ctx: BreachContext): Promise<CaseChange | undefined> {
  for (let attempt = 0; attempt < 3; attempt++) {
    const updated = await updateOpenCase(trx, ctx);
    if (updated) return updated;
    if (ctx.historical) return undefined;
    const reopened = await reopenRecurrence(trx, ctx);
    if (reopened) return reopened;
    if (await suppressed(trx, ctx)) return undefined;
    const opened = await openCase(trx, ctx);
    if (opened) return opened;
    // Lost a race: another worker opened it between our update and insert. Update it instead.
  }
  throw new CsError(CloudErrors.CASE_UPSERT_FAILED, `could not open or update the case of ${ctx.device.id}/${ctx.breach.hazard}`);
}

/** A case voided as a false alarm while the sensor still breached holds back a new one for a while. */
async function suppressed(trx: Kysely<DB>, ctx: BreachContext): Promise<boolean> {
  const { device, breach, at, env } = ctx;
  const by = await suppressedByVoid(trx, device.id, breach.hazard, mergeKeyFor(env.categories, breach.hazard, breach.class), at, env.workflow);
  if (by) ctx.log.debug({ hazard: breach.hazard, voided: by }, 'no new case: held back by a case voided as a false alarm');
  return by !== undefined;
}

/** The emergency period to record on a case: only one under the cap, registered in emergency mode (device health keeps none). */
function periodOf(ctx: BreachContext, cls: CaseClass): number | null {
  return ctx.emergency && underCap(cls, true) ? (ctx.emergencyEpoch ?? null) : null;
}

async function updateOpenCase(trx: Kysely<DB>, ctx: BreachContext): Promise<CaseChange | undefined> {
  const { device, breach, at, env } = ctx;
  const key = mergeKeyFor(env.categories, breach.hazard, breach.class);
  // The UPDATE first: on PostgreSQL it locks the row, so what RETURNING gives is current.
  const row = await trx.updateTable('cases')
    // A replayed (historical) breach is older than what the case shows: counted, never its last value or time.
    .set(ctx.historical ? { breach_count: sql`breach_count + 1` } : { breach_count: sql`breach_count + 1`, last_value: JSON.stringify(breach.value), updated_at: at })
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
  const sched = { calendar: env.calendar, emergency: ctx.emergency };
  if (!hazards.includes(breach.hazard)) {
    joined = true;
    hazards.push(breach.hazard);
    raise.hazards = JSON.stringify(hazards);
    const s = scheduleFor(categoryFor(env.categories, breach.hazard, breach.class), breach.class, at, sched);
    due = Math.min(due, s.deadline);
    notes.push(`joined hazard ${breach.hazard}`);
  }
  if (moreSevere(breach.severity, row.severity as Severity)) {
    raise.severity = breach.severity;
    notes.push(`severity ${row.severity} -> ${breach.severity}`);
  }
  const cls = morePressing(breach.class, row.class as CaseClass) ? breach.class : (row.class as CaseClass);
  if (cls !== row.class) {
    const s = scheduleFor(categoryFor(env.categories, breach.hazard, breach.class), breach.class, at, sched);
    // The new class's limit runs from now, but never past the cap measured from registration.
    due = Math.min(due, s.deadline);
    raise.class = breach.class;
    notes.push(`class ${row.class} -> ${breach.class}`);
    if (s.milestones.length && parseList(row.milestones).length === 0) raise.milestones = JSON.stringify(s.milestones);
  }
  due = Math.min(due, Number(row.opened_at) + capFor(cls, ctx.emergency));
  if (underCap(cls, ctx.emergency) && Number(row.emergency) !== 1) raise.emergency = 1;
  if (due !== Number(row.deadline_at)) {
    raise.deadline_at = due;
    notes.push(`deadline ${new Date(due).toISOString()}`);
  }
  if (Object.keys(raise).length) {
    await trx.updateTable('cases').set(raise).where('id', '=', row.id).execute();
  }
  // History records changes, not samples: a breach that changes nothing writes at most one
  // "still breaching" row per interval (docs/domain.md#the-case).
  const changed = notes.length > 1;
  const recorded = changed || at - await lastHistoryAt(trx, row.id) >= env.workflow.stillBreachingEveryMs;
  if (recorded) {
    await appendHistory(trx, row.id, [{
      at, action: changed ? 'update' : 'still-breaching', ...SYSTEM_ACTOR, from_state: row.state, to_state: row.state,
      note: notes.join('; '),
      // The deadline in the details too: the evaluation reads deadlines from history (docs/evaluation.md#facts).
      details: changed ? (raise.deadline_at !== undefined ? JSON.stringify({ deadline: new Date(due).toISOString() }) : null) : JSON.stringify({ breachCount: Number(row.breach_count) }),
    }]);
  }
  ctx.log.debug({ caseId: row.id, hazard: breach.hazard, breachCount: row.breach_count, recorded }, 'case updated by repeat breach');
  return {
    action: 'updated', caseId: row.id, hazard: breach.hazard, severity: raise.severity ?? row.severity, unit: row.unit, state: row.state, joined, recorded,
  };
}

async function lastHistoryAt(trx: Kysely<DB>, caseId: string): Promise<number> {
  const r = await trx.selectFrom('case_history').select(sql<number | null>`max(at)`.as('t')).where('case_id', '=', caseId).executeTakeFirst();
  return r?.t == null ? -Infinity : Number(r.t);
}

async function reopenRecurrence(trx: Kysely<DB>, ctx: BreachContext): Promise<CaseChange | undefined> {
  const { device, breach, at, env } = ctx;
  const key = mergeKeyFor(env.categories, breach.hazard, breach.class);
  const closed = await trx.selectFrom('cases').select(['id', 'closed_at', 'class', 'unit', 'severity'])
    .where('device', '=', device.id).where('merge_key', '=', key).where('state', '=', 'closed')
    .where('closed_at', '>=', at - env.workflow.reopenWithinMs)
    .orderBy('closed_at', 'desc').limit(1).executeTakeFirst();
  if (!closed) return undefined;
  const cls = morePressing(breach.class, closed.class as CaseClass) ? breach.class : (closed.class as CaseClass);
  const s = scheduleFor(categoryFor(env.categories, breach.hazard, cls), cls, at, { calendar: env.calendar, emergency: ctx.emergency });
  const severity = moreSevere(breach.severity, closed.severity as Severity) ? breach.severity : closed.severity;
  const period = periodOf(ctx, cls);
  const r = await trx.updateTable('cases').set({
    state: 'dispatched', closed_at: null, accepted_at: null, handled_at: null, dispatched_at: at, updated_at: at,
    rework_count: sql`rework_count + 1`, breach_count: sql`breach_count + 1`, last_value: JSON.stringify(breach.value),
    class: cls, severity, deadline_at: s.deadline, milestones: JSON.stringify(s.milestones),
    emergency: s.emergency ? 1 : 0, escalation_level: 0, reminded_at: null, escalated_at: null,
    ...(period != null ? { emergency_epoch: period } : {}),
  }).where('id', '=', closed.id).where('state', '=', 'closed').executeTakeFirst();
  if (Number(r.numUpdatedRows) === 0) return undefined;
  const hours = Math.round((at - Number(closed.closed_at)) / 60_000) / 60;
  await appendHistory(trx, closed.id, [{
    at, action: 'reopen', ...SYSTEM_ACTOR, from_state: 'closed', to_state: 'dispatched',
    reason: `recurrence ${hours} h after closing (within ${env.workflow.reopenWithinMs / HOUR} h): rework`,
    note: describeBreach(breach), details: JSON.stringify({ rework: true, deadline: new Date(s.deadline).toISOString(), ...(period != null ? { emergencyEpoch: period } : {}) }),
  }]);
  ctx.log.child({ caseId: closed.id }).info({ hazard: breach.hazard }, 'case reopened by recurrence (rework)');
  return { action: 'reopened', caseId: closed.id, hazard: breach.hazard, severity, unit: closed.unit, state: 'dispatched', recorded: true };
}

async function openCase(trx: Kysely<DB>, ctx: BreachContext): Promise<CaseChange | undefined> {
  const { device, breach, at, env } = ctx;
  const category = categoryFor(env.categories, breach.hazard, breach.class);
  const unit = routeCase(env.routing, { hazard: breach.hazard, cls: breach.class, category, device, kind: ctx.kind });
  const schedule = scheduleFor(category, breach.class, at, { calendar: env.calendar, emergency: ctx.emergency });
  const dispatch = env.workflow.autoDispatch;
  const id = await nextCaseId(trx, at);
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
    emergency_epoch: periodOf(ctx, breach.class),
    breach_count: 1,
    last_value: JSON.stringify(breach.value),
    threshold_id: breach.thresholdId,
    point: breach.point,
    lat: device.lat,
    lon: device.lon,
    address: device.address ?? null,
    component_code: device.componentCode,
    source: 'sensor',
    category: category.code ?? null,
    reporter: null,
    self_corrected: 0,
    district: districtOf(device),
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
    {
      at, action: 'register', ...SYSTEM_ACTOR, from_state: null, to_state: 'registered', note: `auto-registered: ${describeBreach(breach)}`,
      // What the evaluation counts by, in the chained history (docs/evaluation.md#facts).
      details: JSON.stringify({
        deadline: new Date(schedule.deadline).toISOString(), unit, source: 'sensor',
        district: districtOf(device), emergencyEpoch: periodOf(ctx, breach.class),
      }),
    },
    ...(dispatch ? [{ at, action: 'dispatch', ...SYSTEM_ACTOR, from_state: 'registered', to_state: 'dispatched', note: `auto-dispatched to ${unit}`, details: JSON.stringify({ unit }) }] : []),
  ]);
  ctx.log.child({ caseId: id }).info({ hazard: breach.hazard, unit, severity: breach.severity }, 'case opened');
  return { action: 'opened', caseId: id, hazard: breach.hazard, severity: breach.severity, unit, state: dispatch ? 'dispatched' : 'registered', recorded: true };
}
