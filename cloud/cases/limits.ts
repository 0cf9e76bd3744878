import type { Kysely } from 'kysely';
import { CsError } from '../../lib/errors.ts';
import { EMERGENCY_CAP_HOURS, URGENT_CAP_HOURS } from '../../lib/vocabulary.ts';
import { CloudErrors } from '../errors.ts';
import type { DB } from '../db/schema.ts';
import { parseList, type CaseRow } from './json.ts';
import type { WorkflowPolicy } from './policy.ts';

/**
 * Limits with sense on people's actions (docs/domain.md#the-case): an extension is bounded, and
 * never moves a case under the 12-hour cap past it; a case voided while its sensor still breaches
 * (a false alarm) holds back a new case for that asset and hazard for a while.
 */

const HOUR = 3_600_000;
const DAY = 24 * HOUR;

/** The latest deadline an extension may set, with the reason of the bound. */
async function extensionBound(trx: Kysely<DB>, row: CaseRow, policy: WorkflowPolicy): Promise<{ at: number; why: string }> {
  const current = Number(row.deadline_at);
  const byConfig = { at: current + policy.maxExtensionMs, why: `an extension moves a deadline by at most ${fmt(policy.maxExtensionMs)} (workflow.maxExtensionMs)` };
  if (Number(row.emergency) !== 1) return byConfig;
  // Under the cap: urgent from registration; a case in an emergency period from the later of
  // registration and the switch that tightened it (its `emergency` history row).
  let cap = Number(row.opened_at) + URGENT_CAP_HOURS * HOUR;
  if (row.class !== 'urgent') {
    const t = await trx.selectFrom('case_history').select('at').where('case_id', '=', row.id).where('action', '=', 'emergency')
      .orderBy('seq', 'desc').limit(1).executeTakeFirst();
    cap = Math.max(Number(row.opened_at), t ? Number(t.at) : -Infinity) + EMERGENCY_CAP_HOURS * HOUR;
  }
  return cap < byConfig.at ? { at: cap, why: `case ${row.id} is under the 12-hour cap, due by ${new Date(cap).toISOString()} at the latest` } : byConfig;
}

/** Checks a requested extension; throws CS_CLOUD_CASE_BAD_ACTION naming the bound. */
export async function checkExtension(trx: Kysely<DB>, row: CaseRow, due: number, policy: WorkflowPolicy): Promise<void> {
  const bound = await extensionBound(trx, row, policy);
  if (due > bound.at) {
    throw new CsError(CloudErrors.CASE_BAD_ACTION, `the new deadline ${new Date(due).toISOString()} is too late: ${bound.why}`);
  }
}

/** Every hazard joined in a case. */
export function caseHazards(row: Pick<CaseRow, 'hazards' | 'hazard'>): string[] {
  const hazards = parseList(row.hazards);
  return hazards.length ? hazards : [row.hazard];
}

/** An active alarm of one of the case's hazards at its asset: the sensor still breaches. */
export async function activeAlarmOf(trx: Kysely<DB>, row: CaseRow): Promise<{ id: string; hazard: string; raised_at: number } | undefined> {
  const hazards = caseHazards(row);
  return trx.selectFrom('alarms').select(['id', 'hazard', 'raised_at']).where('device', '=', row.device)
    .where('hazard', 'in', hazards).where('cleared_at', 'is', null).executeTakeFirst();
}

/**
 * Whether a breach of (device, hazard or merge key) at `at` is held back by a case voided as a
 * false alarm; the void's history row carries `suppressNewCaseUntil`.
 */
export async function suppressedByVoid(trx: Kysely<DB>, device: string, hazard: string, mergeKey: string, at: number, policy: WorkflowPolicy): Promise<string | undefined> {
  if (policy.voidSuppressMs <= 0) return undefined;
  const voided = await trx.selectFrom('cases').select('id').where('device', '=', device).where('state', '=', 'void')
    .where((eb) => eb.or([eb('merge_key', '=', mergeKey), eb('hazard', '=', hazard)]))
    .where('closed_at', '>=', at - policy.voidSuppressMs).orderBy('closed_at', 'desc').limit(1).executeTakeFirst();
  if (!voided) return undefined;
  const h = await trx.selectFrom('case_history').select('details').where('case_id', '=', voided.id).where('action', '=', 'void')
    .orderBy('seq', 'desc').limit(1).executeTakeFirst();
  const until = h?.details ? Date.parse(String((JSON.parse(h.details) as { suppressNewCaseUntil?: unknown }).suppressNewCaseUntil ?? '')) : NaN;
  return Number.isFinite(until) && at < until ? voided.id : undefined;
}

function fmt(ms: number): string {
  return ms % DAY === 0 ? `${ms / DAY} days` : ms % HOUR === 0 ? `${ms / HOUR} hours` : `${Math.round(ms / 60_000)} minutes`;
}
