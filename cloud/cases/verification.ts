import { sql, type Kysely } from 'kysely';
import { CsError } from '../../lib/errors.ts';
import { CloudErrors } from '../errors.ts';
import type { DB } from '../db/schema.ts';
import { activeAlarmOf, caseHazards } from './limits.ts';
import type { CaseRow } from './json.ts';
import type { WorkflowPolicy } from './policy.ts';

/**
 * Sensor-verified closure (docs/domain.md#the-case): verification is refused while an alarm of the
 * case's hazards is active at the asset, or cleared for less than the window. One rule, used by the
 * verify action and shown on handled cases (`verification`) so the verifier sees it before trying.
 */

export interface Clearance {
  active?: { id: string; hazard: string; raised_at: number };
  /** When the last alarm of the case's hazards at the asset cleared; undefined when none ever did. */
  clearedAt?: number;
}

export interface VerificationJson {
  inRange: boolean;
  backSince: string | null;
  windowMs: number;
  ready: boolean;
}

export async function sensorClearance(db: Kysely<DB>, row: CaseRow): Promise<Clearance> {
  const active = await activeAlarmOf(db, row);
  if (active) return { active: { ...active, raised_at: Number(active.raised_at) } };
  const last = await db.selectFrom('alarms').select(sql<number | null>`max(cleared_at)`.as('t')).where('device', '=', row.device)
    .where('hazard', 'in', caseHazards(row)).executeTakeFirst();
  return { clearedAt: last?.t == null ? undefined : Number(last.t) };
}

export function verificationOf(c: Clearance, at: number, policy: WorkflowPolicy): VerificationJson {
  const inRange = !c.active;
  const backSince = inRange && c.clearedAt !== undefined ? new Date(c.clearedAt).toISOString() : null;
  const ready = inRange && (c.clearedAt === undefined || at - c.clearedAt >= policy.verifyClearMs);
  return { inRange, backSince, windowMs: policy.verifyClearMs, ready };
}

/** Throws CS_CLOUD_CASE_SENSOR_NOT_CLEAR when the rule refuses verification at `at`. */
export async function checkSensorClear(trx: Kysely<DB>, row: CaseRow, at: number, policy: WorkflowPolicy): Promise<void> {
  const c = await sensorClearance(trx, row);
  if (c.active) {
    throw new CsError(CloudErrors.CASE_SENSOR_NOT_CLEAR,
      `cannot verify case ${row.id}: ${row.device} is still out of range for ${c.active.hazard} (alarm ${c.active.id} since ${new Date(c.active.raised_at).toISOString()})`);
  }
  if (!verificationOf(c, at, policy).ready) {
    const clearedAt = c.clearedAt!;
    throw new CsError(CloudErrors.CASE_SENSOR_NOT_CLEAR,
      `cannot verify case ${row.id}: ${row.device} has been back in range only since ${new Date(clearedAt).toISOString()} (${Math.round((at - clearedAt) / 1000)} s); verification needs ${Math.round(policy.verifyClearMs / 1000)} s`);
  }
}
