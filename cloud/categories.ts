import type { Device } from '../devices/district.ts';

/**
 * Case categories as data (DESIGN.md section 3): per hazard a title, the usual class, the time
 * limit in continuous hours (紧急工作时) and who must handle it. Limits in working hours and
 * working days on a work calendar come with the calendar; until then they count continuous hours.
 */

export type CaseClass = 'urgent' | 'routine' | 'device-health';
export type Severity = 'info' | 'minor' | 'major' | 'critical';

export interface Category {
  title: string;
  /** The class a breach of this hazard usually has; the threshold's own class decides per case. */
  class: CaseClass;
  /** Time limit in continuous hours from registration. */
  limitHours: number;
  /** A different limit when the breach has another class (e.g. a routine tier-1 waterlogging). */
  limitHoursByClass?: Partial<Record<CaseClass, number>>;
  /** Who handles it: the device's owner unit or its maintainer unit. */
  unit: 'owner' | 'maintainer';
}

export type Categories = Record<string, Category>;

/** No urgent case may be due later than this after registration (the Zhuhai emergency rule). */
export const URGENT_CAP_HOURS = 12;
const HOUR = 3_600_000;

export const DEFAULT_CATEGORIES: Categories = {
  'cover-open': { title: 'Manhole cover open or displaced (井盖缺失/移位)', class: 'urgent', limitHours: 6, unit: 'owner' },
  'water-in-well': { title: 'Water in a well (井内积水)', class: 'urgent', limitHours: 6, unit: 'owner' },
  gas: { title: 'Gas in a well above threshold (井内可燃/有毒气体超标)', class: 'urgent', limitHours: 2, unit: 'owner' },
  waterlogging: { title: 'Road waterlogging (道路积水)', class: 'urgent', limitHours: 6, limitHoursByClass: { routine: 24 }, unit: 'owner' },
  'pressure-low': { title: 'Pipeline pressure drop, possible burst (管网压力骤降/爆管)', class: 'urgent', limitHours: 8, unit: 'owner' },
  'pressure-high': { title: 'Pipeline pressure above band (管网压力超限)', class: 'routine', limitHours: 24, unit: 'owner' },
  'low-battery': { title: 'Sensor battery low (感知设备电量低)', class: 'device-health', limitHours: 48, unit: 'maintainer' },
};

/** The category of a hazard; a hazard no category names gets a conservative one (24 h, owner; maintainer for device health). */
export function categoryFor(categories: Categories, hazard: string, cls: CaseClass): Category {
  return categories[hazard] ?? {
    title: `Sensor alarm: ${hazard}`,
    class: cls,
    limitHours: 24,
    unit: cls === 'device-health' ? 'maintainer' : 'owner',
  };
}

export function limitHours(category: Category, cls: CaseClass): number {
  return category.limitHoursByClass?.[cls] ?? category.limitHours;
}

/** Absolute deadline: registration + limit, and for urgent cases never later than registration + 12 h. */
export function deadlineFor(category: Category, cls: CaseClass, registeredAt: number): number {
  const due = registeredAt + limitHours(category, cls) * HOUR;
  return cls === 'urgent' ? Math.min(due, registeredAt + URGENT_CAP_HOURS * HOUR) : due;
}

/** The responsible unit: the device's owner, or its maintainer for device-health cases. */
export function responsibleUnit(category: Category, cls: CaseClass, device: Pick<Device, 'ownerUnit' | 'maintainerUnit'>): string {
  return category.unit === 'maintainer' || cls === 'device-health' ? device.maintainerUnit : device.ownerUnit;
}

const SEVERITY_RANK: Record<Severity, number> = { info: 0, minor: 1, major: 2, critical: 3 };
const CLASS_RANK: Record<CaseClass, number> = { 'device-health': 0, routine: 1, urgent: 2 };

export function severityRank(s: string): number {
  return SEVERITY_RANK[s as Severity] ?? -1;
}

export function classRank(c: string): number {
  return CLASS_RANK[c as CaseClass] ?? -1;
}
