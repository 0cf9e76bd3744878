import { sql, type Kysely } from 'kysely';
import { CsError } from '../../lib/errors.ts';
import { CloudErrors } from '../errors.ts';
import { OPEN_CASE_PREDICATE } from '../db/migrations.ts';
import type { CasesTable, DB } from '../db/schema.ts';
import { illegalMessage, nextState, ACTION_ROLES, NEEDS_REASON, type CaseAction, type CaseState } from '../workflow.ts';
import type { Principal } from '../tokens.ts';
import { appendHistory } from './history.ts';
import { activeAlarmOf, caseHazards, checkExtension } from './limits.ts';
import type { CaseRow } from './json.ts';
import type { CaseEnv, WorkflowPolicy } from './policy.ts';

/** People's actions on a case: the workflow's transitions, each checked, applied and appended to the history. */

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
      await checkExtension(trx, row, due, env.workflow);
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
    case 'void': {
      set.closed_at = at;
      // A false alarm while the sensor still breaches: no new case for it for a while.
      const active = await activeAlarmOf(trx, row);
      if (active && env.workflow.voidSuppressMs > 0) {
        Object.assign(details, { stillBreaching: active.hazard, suppressNewCaseUntil: new Date(at + env.workflow.voidSuppressMs).toISOString() });
      }
      break;
    }
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
  const active = await activeAlarmOf(trx, row);
  if (active) {
    throw new CsError(CloudErrors.CASE_SENSOR_NOT_CLEAR,
      `cannot verify case ${row.id}: ${row.device} is still out of range for ${active.hazard} (alarm ${active.id} since ${new Date(Number(active.raised_at)).toISOString()})`);
  }
  const last = await trx.selectFrom('alarms').select(sql<number | null>`max(cleared_at)`.as('t')).where('device', '=', row.device)
    .where('hazard', 'in', caseHazards(row)).executeTakeFirst();
  const clearedAt = last?.t == null ? undefined : Number(last.t);
  if (clearedAt !== undefined && at - clearedAt < policy.verifyClearMs) {
    throw new CsError(CloudErrors.CASE_SENSOR_NOT_CLEAR,
      `cannot verify case ${row.id}: ${row.device} has been back in range only since ${new Date(clearedAt).toISOString()} (${Math.round((at - clearedAt) / 1000)} s); verification needs ${Math.round(policy.verifyClearMs / 1000)} s`);
  }
}
