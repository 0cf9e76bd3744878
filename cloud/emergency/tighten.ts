import type { Kysely } from 'kysely';
import { EMERGENCY_CAP_HOURS, type CaseClass } from '../../lib/vocabulary.ts';
import type { Calendar } from '../calendar.ts';
import { appendHistory, SYSTEM_ACTOR } from '../cases/index.ts';
import { categoryFor, type Categories } from '../categories.ts';
import { OPEN_CASE_PREDICATE } from '../db/migrations.ts';
import type { DB } from '../db/schema.ts';
import type { ModeState } from './mode.ts';

/**
 * Entering emergency mode pulls every open hazard case (not device health: docs/domain.md#the-case,
 * the categories table) in to the cap counted from the switch, stamps the period on it and
 * recomputes its sub-deadlines: kept ones are clamped to the new deadline, and a case that had none
 * (routine in normal mode) gets its category's, counted from the switch as its deadline is. Each
 * case changed gets one history row (docs/domain.md#the-case: every change is in the history).
 */

const HOUR = 3_600_000;

export interface TightenEnv {
  categories: Categories;
  calendar: Calendar;
  capHours?: number;
}

export interface TightenedCase {
  id: string;
  device: string;
  hazard: string;
  state: string;
  unit: string;
  deadline: { from: number; to: number };
}

type Milestones = { name: string; due: number | null; reachedAt?: number | null }[];

/** Runs inside the switch's transaction, so the mode and its cases change together or not at all. */
export async function tightenOpenCases(trx: Kysely<DB>, s: ModeState, env: TightenEnv): Promise<TightenedCase[]> {
  const cap = s.since + (env.capHours ?? EMERGENCY_CAP_HOURS) * HOUR;
  const open = await trx.selectFrom('cases')
    .select(['id', 'device', 'hazard', 'class', 'state', 'unit', 'deadline_at', 'milestones'])
    .where(OPEN_CASE_PREDICATE).where('class', '!=', 'device-health')
    .orderBy('id').execute();
  const out: TightenedCase[] = [];
  for (const c of open) {
    const from = Number(c.deadline_at);
    const to = Math.min(from, cap);
    const before = JSON.parse(c.milestones || '[]') as Milestones;
    const category = categoryFor(env.categories, c.hazard, c.class as CaseClass);
    const milestones: Milestones = before.length
      // A milestone recorded without a due time (docs/domain.md#milestones-and-extension-requests) keeps none; reached times stay.
      ? before.map((m) => ({ ...m, due: m.due == null ? m.due : Math.min(Number(m.due), to) }))
      : (category.milestones ?? []).map((m) => ({ name: m.name, due: Math.min(env.calendar.due(s.since, m.limit), to) }));
    await trx.updateTable('cases').set({
      emergency: 1, emergency_epoch: s.epoch, deadline_at: to, milestones: JSON.stringify(milestones), updated_at: s.since,
    }).where('id', '=', c.id).execute();
    await appendHistory(trx, c.id, [{
      at: s.since, action: 'emergency', ...SYSTEM_ACTOR, from_state: c.state, to_state: c.state,
      reason: `emergency mode period ${s.epoch} (level ${s.level}): due within ${env.capHours ?? EMERGENCY_CAP_HOURS} h of the switch`,
      note: to < from ? `deadline pulled in from ${new Date(from).toISOString()} to ${new Date(to).toISOString()}` : 'deadline already within the cap',
      details: JSON.stringify({
        epoch: s.epoch, level: s.level,
        deadline: { from: new Date(from).toISOString(), to: new Date(to).toISOString() },
        milestones: { from: isoList(before), to: isoList(milestones) },
      }),
    }]);
    out.push({ id: c.id, device: c.device, hazard: c.hazard, state: c.state, unit: c.unit, deadline: { from, to } });
  }
  return out;
}

const isoList = (ms: Milestones) => ms.map((m) => ({ name: m.name, due: m.due == null ? null : new Date(Number(m.due)).toISOString() }));
