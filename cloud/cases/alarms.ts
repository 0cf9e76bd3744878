import { randomBytes } from 'node:crypto';
import type { Kysely } from 'kysely';
import type { Device } from '../../devices/district.ts';
import type { DB } from '../db/schema.ts';
import type { Breach } from '../rules.ts';
import type { AlarmRow } from './json.ts';

/** Alarms: at most one active alarm per (device, hazard), raised and cleared by the rules, linked to a case. */

export function newAlarmId(): string {
  return `AL-${randomBytes(6).toString('hex')}`;
}

/** Raises the one active alarm of (device, hazard); undefined when it is already active. */
export async function raiseAlarm(trx: Kysely<DB>, device: string, b: Breach, at: number, caseId: string | null): Promise<AlarmRow | undefined> {
  return trx.insertInto('alarms').values({
    id: newAlarmId(), device, hazard: b.hazard, rule_id: b.thresholdId, severity: b.severity, class: b.class,
    point: b.point, value: JSON.stringify(b.value), raised_at: at, cleared_at: null, acked_at: null, acked_by: null, case_id: caseId,
    origin: b.origin ?? 'cloud',
  }).onConflict((oc) => oc.doNothing()).returningAll().executeTakeFirst();
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

/**
 * The unit responsible for an alarm, whose crew may acknowledge it: its case's unit (routing may
 * name another), else the asset's owner for a hazard and its maintainer for device health
 * (docs/domain.md#users).
 */
export async function alarmUnit(db: Kysely<DB>, alarm: AlarmRow, device: Pick<Device, 'ownerUnit' | 'maintainerUnit'>): Promise<string> {
  if (alarm.case_id !== null) {
    const c = await db.selectFrom('cases').select('unit').where('id', '=', alarm.case_id).executeTakeFirst();
    if (c) return c.unit;
  }
  return alarm.class === 'device-health' ? device.maintainerUnit : device.ownerUnit;
}
