import type { Device } from '../devices/district.ts';
import { EMERGENCY_CAP_HOURS, URGENT_CAP_HOURS, type CaseClass } from '../lib/vocabulary.ts';
import { createCalendar, type Calendar, type TimeLimit } from './calendar.ts';
import { categoriesOf, DEMO_CATALOGUE } from './catalogue/index.ts';

/**
 * Case categories per sensor hazard, derived from the category catalogue (cloud/catalogue/): per hazard a title, the usual class, the time
 * limit (continuous minutes/hours, working hours or working days on the work calendar), optional
 * sub-deadlines (milestones), the merge group (related hazards at one asset join one case) and who
 * handles it. Deadlines are stored as absolute instants.
 */

export interface Milestone {
  name: string;
  limit: TimeLimit;
}

export interface Category {
  /** The catalogue category's code (cloud/catalogue/), when the hazard has one. */
  code?: string;
  title: string;
  /** The class a breach of this hazard usually has; the rule's own class decides per case. */
  class: CaseClass;
  /** Time limit; `limitHours` (continuous hours) is the short form. */
  limit?: TimeLimit;
  limitHours?: number;
  /** A different limit when the breach has another class (e.g. a routine tier-1 waterlogging). */
  limitByClass?: Partial<Record<CaseClass, TimeLimit>>;
  limitHoursByClass?: Partial<Record<CaseClass, number>>;
  /** Sub-deadlines before the final one (e.g. on site within 30 minutes), for urgent cases. */
  milestones?: Milestone[];
  /** Hazards with the same group at one asset join one open case; default: the hazard itself. */
  group?: string;
  /** Who handles it by default: the device's owner unit or its maintainer unit (routing rules may override). */
  unit: 'owner' | 'maintainer';
}

export type Categories = Record<string, Category>;

const HOUR = 3_600_000;
const h = (amount: number): TimeLimit => ({ amount, unit: 'hours' });
const workDays = (amount: number): TimeLimit => ({ amount, unit: 'workDays' });

/**
 * The demo catalogue's sensor hazards (cloud/catalogue/demo.json, docs/catalogue.md): a Tianjin manhole
 * rule, a Sichuan county's time limits, the 12-hour cap. The catalogue is the one source; this is its per-hazard view.
 */
export const DEFAULT_CATEGORIES: Categories = categoriesOf(DEMO_CATALOGUE);

/** The category of a hazard; a hazard no category names gets a conservative one (1 working day; 2 for device health). */
export function categoryFor(categories: Categories, hazard: string, cls: CaseClass): Category {
  return categories[hazard] ?? {
    title: `Sensor alarm: ${hazard}`,
    class: cls,
    limit: cls === 'device-health' ? workDays(2) : workDays(1),
    unit: cls === 'device-health' ? 'maintainer' : 'owner',
  };
}

/** The merge key of a hazard: its category's group, or the hazard. Device health never merges with hazards. */
export function mergeKeyFor(categories: Categories, hazard: string, cls: CaseClass): string {
  const g = categories[hazard]?.group;
  return cls === 'device-health' || !g ? hazard : g;
}

export function limitFor(category: Category, cls: CaseClass): TimeLimit {
  const byClass = category.limitByClass?.[cls];
  if (byClass) return byClass;
  const hoursByClass = category.limitHoursByClass?.[cls];
  if (hoursByClass !== undefined) return h(hoursByClass);
  if (category.limit) return category.limit;
  return h(category.limitHours ?? 24);
}

/** @deprecated continuous-hour view, kept for callers of the spine API. */
export function limitHours(category: Category, cls: CaseClass): number {
  const l = limitFor(category, cls);
  return l.unit === 'hours' ? l.amount : l.unit === 'minutes' ? l.amount / 60 : NaN;
}

export interface ScheduleOptions {
  calendar?: Calendar;
  /** Emergency mode (docs/domain.md#emergency-mode): every hazard case due within 12 hours. */
  emergency?: boolean;
}

export interface Schedule {
  deadline: number;
  milestones: { name: string; due: number }[];
  /** Whether the case falls under the emergency cap (urgent class, or any hazard in emergency mode). */
  emergency: boolean;
}

const defaultCalendar = createCalendar();

/**
 * Whether a case of this class falls under the 12-hour cap: urgent always, any hazard in emergency
 * mode; device health never (it keeps its normal period, docs/domain.md#emergency-mode).
 */
export function underCap(cls: CaseClass, emergency: boolean): boolean {
  return cls === 'urgent' || (emergency && cls !== 'device-health');
}

/** Cap in ms from registration, or Infinity. */
export function capFor(cls: CaseClass, emergency: boolean): number {
  if (cls === 'urgent') return URGENT_CAP_HOURS * HOUR;
  return underCap(cls, emergency) ? EMERGENCY_CAP_HOURS * HOUR : Infinity;
}

/** Absolute deadline and sub-deadlines of a case registered at `registeredAt`. */
export function scheduleFor(category: Category, cls: CaseClass, registeredAt: number, opts: ScheduleOptions = {}): Schedule {
  const cal = opts.calendar ?? defaultCalendar;
  const capped = underCap(cls, opts.emergency ?? false);
  const deadline = Math.min(cal.due(registeredAt, limitFor(category, cls)), registeredAt + capFor(cls, opts.emergency ?? false));
  const milestones = capped
    ? (category.milestones ?? []).map((m) => ({ name: m.name, due: Math.min(cal.due(registeredAt, m.limit), deadline) }))
    : [];
  return { deadline, milestones, emergency: capped };
}

/** Absolute deadline: registration + limit, and for urgent cases never later than registration + 12 h. */
export function deadlineFor(category: Category, cls: CaseClass, registeredAt: number, opts: ScheduleOptions = {}): number {
  return scheduleFor(category, cls, registeredAt, opts).deadline;
}

/** The default responsible unit: the device's owner, or its maintainer for device-health cases. */
export function responsibleUnit(category: Category, cls: CaseClass, device: Pick<Device, 'ownerUnit' | 'maintainerUnit'>): string {
  return category.unit === 'maintainer' || cls === 'device-health' ? device.maintainerUnit : device.ownerUnit;
}
