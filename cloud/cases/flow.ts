import type { Kysely } from 'kysely';
import type { Device } from '../../devices/district.ts';
import type { DB } from '../db/schema.ts';
import type { EventInput } from '../events.ts';
import { clearAlarm, linkAlarm, raiseAlarm } from './alarms.ts';
import { applyBreach } from './breach.ts';
import { iso } from './json.ts';
import type { BreachContext, CaseChange } from './policy.ts';

/**
 * The one breach orchestration, for every source of breaches (readings, the no-data check, edge
 * alarms): breach -> alarm -> case -> link, inside the caller's write transaction, then the events
 * of what changed, emitted by the caller after the commit (docs/architecture.md#the-data-path).
 */

export interface AlarmChange { action: 'raised' | 'cleared'; alarmId: string; hazard: string; caseId: string | null; class: string }

export interface BreachInput extends BreachContext {
  /** The rules saw the hazard start with this breach: raise its alarm. */
  raised: boolean;
  /**
   * Only a newly raised alarm acts (the no-data check): when the alarm is already active (another
   * worker raised it first), the case is left alone.
   */
  onlyIfRaised?: boolean;
}

export interface BreachOutcome {
  case?: CaseChange;
  /** The alarm this breach raised, linked to the case. */
  alarm?: AlarmChange;
}

/** Records one breach: raises its alarm (when the rules say it started), applies it to a case, links the two. */
export async function recordBreach(trx: Kysely<DB>, input: BreachInput): Promise<BreachOutcome> {
  const { device, breach, at } = input;
  const row = input.raised ? await raiseAlarm(trx, device.id, breach, at, null) : undefined;
  if (input.onlyIfRaised && !row) return {};
  const change = await applyBreach(trx, input);
  if (change) {
    if (row) await trx.updateTable('alarms').set({ case_id: change.caseId }).where('id', '=', row.id).execute();
    // An alarm raised before this case existed (or linked to a closed one) now points at it.
    else if (input.raised || change.action !== 'updated') await linkAlarm(trx, device.id, breach.hazard, change.caseId);
  }
  const alarm: AlarmChange | undefined = row
    ? { action: 'raised', alarmId: row.id, hazard: breach.hazard, caseId: change?.caseId ?? null, class: row.class }
    : undefined;
  return { ...(change ? { case: change } : {}), ...(alarm ? { alarm } : {}) };
}

/** Clears the active alarm of (device, hazard): back in range, or reporting again. */
export async function recordClear(trx: Kysely<DB>, device: string, hazard: string, at: number): Promise<AlarmChange | undefined> {
  const row = await clearAlarm(trx, device, hazard, at);
  return row ? { action: 'cleared', alarmId: row.id, hazard, caseId: row.case_id, class: row.class } : undefined;
}

/** The events of what breaches and clears changed: alarms first, then the recorded case changes. */
export function breachEvents(device: Device, at: number, cases: readonly CaseChange[], alarms: readonly AlarmChange[]): EventInput[] {
  const when = iso(at);
  const out: EventInput[] = [];
  for (const a of alarms) {
    out.push({
      type: a.action === 'raised' ? 'alarm.raised' : 'alarm.cleared', at: when, alarmId: a.alarmId, caseId: a.caseId ?? undefined,
      device: device.id, hazard: a.hazard, unit: a.class === 'device-health' ? device.maintainerUnit : device.ownerUnit,
    });
  }
  for (const c of cases) {
    // A quiet counter update (a continuing breach that changed nothing) is no event, as it is no history row.
    if (!c.recorded) continue;
    out.push({
      type: c.action === 'opened' ? 'case.opened' : c.action === 'reopened' ? 'case.reopened' : 'case.updated',
      at: when, caseId: c.caseId, unit: c.unit, device: device.id, hazard: c.hazard, state: c.state,
      data: { severity: c.severity, ...(c.joined ? { joined: true } : {}) },
    });
  }
  return out;
}
