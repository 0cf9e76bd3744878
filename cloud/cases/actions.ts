import type { Kysely } from 'kysely';
import { CsError } from '../../lib/errors.ts';
import { CloudErrors } from '../errors.ts';
import { OPEN_CASE_PREDICATE } from '../db/migrations.ts';
import type { CasesTable, DB } from '../db/schema.ts';
import { illegalMessage, nextState, ACTION_ROLES, NEEDS_REASON, PHOTO_ACTIONS, type CaseAction, type CaseState } from '../workflow.ts';
import type { Principal } from '../tokens.ts';
import { appendHistory } from './history.ts';
import { activeAlarmOf, checkExtension } from './limits.ts';
import { checkSensorClear } from './verification.ts';
import type { CaseRow } from './json.ts';
import type { CaseEnv } from './policy.ts';
import { applyWork } from './work.ts';

/** People's actions on a case: the workflow's transitions, each checked, applied and appended to the history. */

export interface ActionBody {
  reason?: string;
  notes?: string;
  evidence?: string[];
  /** For `extend`: the new deadline (ISO 8601). */
  deadline?: string;
  /** For `dispatch`: another responsible unit. */
  unit?: string;
  /** For `extend` (same as `deadline`) and `request-extension`: the (requested) new deadline. */
  until?: string;
  /** For `handle`, `note`, `rework`: photo ids uploaded to this case first. */
  photos?: string[];
  /** Client-chosen id: the same id again is answered with the case as it is, applied once (docs/domain.md#milestones-and-extension-requests). */
  actionId?: string;
}

/** Who acted, for the history and audit: `user:NAME` or `token:ID` (cloud/tokens.ts Principal). */
export function actorOf(p: Principal): string {
  return p.actor;
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

/** Reads a case as the principal may see it: a crew sees only its unit's cases, an inspector the ones it registered (404 otherwise). */
export async function visibleCase(db: Kysely<DB>, id: string, principal: Principal): Promise<CaseRow> {
  const row = await db.selectFrom('cases').selectAll().where('id', '=', id).executeTakeFirst();
  if (!row || (principal.role === 'crew' && row.unit !== principal.unit) || (principal.role === 'inspector' && row.reporter !== principal.actor)) {
    throw new CsError(CloudErrors.CASE_NOT_FOUND, `no case "${id}"`);
  }
  return row;
}

/** Runs one workflow action inside the caller's write transaction; returns the case after it. */
export async function applyAction(trx: Kysely<DB>, input: ActionInput): Promise<{ row: CaseRow; from: CaseState; to: CaseState; replayed: boolean }> {
  const { id, action, principal, body, at, env } = input;
  const row = await visibleCase(trx, id, principal);
  if (!ACTION_ROLES[action].includes(principal.role)) {
    throw new CsError(CloudErrors.FORBIDDEN, `role ${principal.role} may not ${action} a case (allowed: ${ACTION_ROLES[action].join(', ')})`);
  }
  const actor = actorOf(principal);
  if (body.actionId !== undefined && await claimActionId(trx, body.actionId, id, action, actor, at) === 'replay') {
    return { row, from: row.state as CaseState, to: row.state as CaseState, replayed: true };
  }
  const from = row.state as CaseState;
  const to = nextState(from, action, row.resume_state);
  if (!to) throw new CsError(CloudErrors.CASE_ILLEGAL_ACTION, illegalMessage(id, from, action), { state: from, action });
  if (NEEDS_REASON.has(action) && !body.reason?.trim()) {
    throw new CsError(CloudErrors.CASE_BAD_ACTION, `${action} needs a reason (body field "reason")`);
  }
  const set: Partial<CasesTable> = { state: to, updated_at: at };
  const details: Record<string, unknown> = {};
  if (body.photos?.length) {
    if (!PHOTO_ACTIONS.has(action)) throw new CsError(CloudErrors.CASE_BAD_ACTION, `${action} takes no photos (photos go with ${[...PHOTO_ACTIONS].join(', ')})`);
    details.photos = await attachPhotos(trx, id, body.photos, action);
  }
  applyWork(action, row, body, at, actor, set, details);
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
      const wanted = body.deadline ?? body.until;
      const due = wanted === undefined ? NaN : Date.parse(wanted);
      if (!Number.isFinite(due)) throw new CsError(CloudErrors.CASE_BAD_ACTION, 'extend needs a new deadline (body field "deadline" or "until", ISO 8601)');
      if (due <= Number(row.deadline_at)) {
        throw new CsError(CloudErrors.CASE_BAD_ACTION, `the new deadline ${new Date(due).toISOString()} is not after the current one ${new Date(Number(row.deadline_at)).toISOString()}`);
      }
      await checkExtension(trx, row, due, env.workflow);
      set.deadline_at = due;
      set.extension_count = Number(row.extension_count) + 1;
      set.reminded_at = null;
      set.escalation_level = 0;
      Object.assign(details, { from: new Date(Number(row.deadline_at)).toISOString(), to: new Date(due).toISOString(), approver: actor });
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
    at, action, actor, role: principal.role, from_state: from, to_state: to,
    note: body.notes ?? null, reason: body.reason ?? null,
    evidence: body.evidence?.length ? JSON.stringify(body.evidence) : null,
    details: Object.keys(details).length ? JSON.stringify(details) : null,
  }]);
  const after = await trx.selectFrom('cases').selectAll().where('id', '=', id).executeTakeFirstOrThrow();
  return { row: after, from, to, replayed: false };
}

/**
 * Claims a client's action id in the action's transaction. `replay` when this case and action
 * already applied it; 409 when another case or action did. Inserting first makes a concurrent
 * duplicate wait on the key (PostgreSQL) or the write lock (SQLite) and then see the claim.
 */
async function claimActionId(trx: Kysely<DB>, actionId: string, caseId: string, action: CaseAction, actor: string, at: number): Promise<'new' | 'replay'> {
  const r = await trx.insertInto('case_actions').values({ id: actionId, case_id: caseId, action, actor, at })
    .onConflict((oc) => oc.column('id').doNothing()).returning('id').executeTakeFirst();
  if (r) return 'new';
  const prior = await trx.selectFrom('case_actions').selectAll().where('id', '=', actionId).executeTakeFirstOrThrow();
  if (prior.case_id === caseId && prior.action === action) return 'replay';
  throw new CsError(CloudErrors.ACTION_ID_REUSED, `action id "${actionId}" was already used for ${prior.action} on case ${prior.case_id === caseId ? 'this case' : 'another case'}; choose a new id for a new action`);
}

/** Photos named in an action must be uploaded to this case first; they take the action as their stage. */
async function attachPhotos(trx: Kysely<DB>, caseId: string, ids: string[], action: CaseAction): Promise<string[]> {
  const unique = [...new Set(ids)];
  const held = await trx.selectFrom('case_photos').select('photo_id').where('case_id', '=', caseId).where('photo_id', 'in', unique).execute();
  const have = new Set(held.map((h) => h.photo_id));
  const missing = unique.filter((p) => !have.has(p));
  if (missing.length) throw new CsError(CloudErrors.CASE_BAD_ACTION, `photo ${missing.join(', ')} is not uploaded to case ${caseId}: POST /api/cases/${caseId}/photos first`);
  await trx.updateTable('case_photos').set({ stage: action }).where('case_id', '=', caseId).where('photo_id', 'in', unique).execute();
  return unique;
}
