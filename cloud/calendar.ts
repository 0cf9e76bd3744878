import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { Type, type Static } from '@sinclair/typebox';
import { check } from '../lib/schema.ts';
import { CsError } from '../lib/errors.ts';
import { CloudErrors } from './errors.ts';

/**
 * The work calendar and time limits (docs/domain.md#glossary): limits are written in continuous
 * minutes/hours (紧急工作时), working hours (工作时) or working days (工作日) and turned into absolute
 * instants. Working time runs only inside `workingHours` on working days: weekdays minus public
 * holidays, plus the adjusted working weekend days (调休). The State Council's holidays and 调休 come
 * from the npm package chinese-days for every year it covers; the city's own `holidays` and
 * `workdays` win over them; a year it does not cover has weekends only, with a warning. Asia/Shanghai is UTC+8 without DST, so a
 * fixed offset is exact. A working day counts as the length of one working day in working hours
 * (registered Friday 16:00, one working day is due Monday 16:00).
 */

const DateStr = Type.String({ pattern: '^\\d{4}-\\d{2}-\\d{2}$' });
const Clock = Type.String({ pattern: '^([01]\\d|2[0-3]):[0-5]\\d$' });

export const WorkCalendar = Type.Object({
  name: Type.String(),
  utcOffsetMinutes: Type.Integer({ minimum: -720, maximum: 840, default: 480 }),
  /** Working periods of a working day, local time, in order: e.g. [["08:30","12:00"],["14:00","17:30"]]. */
  workingHours: Type.Array(Type.Tuple([Clock, Clock]), { minItems: 1 }),
  /** Days of the week off (0 Sunday .. 6 Saturday). */
  weekend: Type.Array(Type.Integer({ minimum: 0, maximum: 6 }), { default: [0, 6] }),
  /** Official holidays and 调休 underneath the city's own: China's State Council (chinese-days, default) or none. */
  stateHolidays: Type.Optional(Type.Union([Type.Literal('chinese-days'), Type.Literal('none')], { default: 'chinese-days' })),
  /** The city's own days off (local dates, e.g. a typhoon day); they win over the official calendar. */
  holidays: Type.Array(DateStr, { default: [] }),
  /** The city's own working days (local dates); they win over the official calendar and the weekend. */
  workdays: Type.Array(DateStr, { default: [] }),
}, { additionalProperties: false });
export type WorkCalendar = Static<typeof WorkCalendar>;

export const TimeUnit = Type.Union([Type.Literal('minutes'), Type.Literal('hours'), Type.Literal('workHours'), Type.Literal('workDays')]);
export type TimeUnit = Static<typeof TimeUnit>;
export const TimeLimit = Type.Object({ amount: Type.Number({ exclusiveMinimum: 0 }), unit: TimeUnit }, { additionalProperties: false });
export type TimeLimit = Static<typeof TimeLimit>;

export const DEFAULT_CALENDAR_FILE = new URL('./data/calendar-cn.json', import.meta.url);

/** The State Council's days as chinese-days carries them: days off, make-up working days, years covered. */
export interface StateDays { holidays: Set<string>; workdays: Set<string>; years: Set<number> }

let stateDays: StateDays | undefined;
export function chineseStateDays(): StateDays {
  if (stateDays) return stateDays;
  const file = createRequire(import.meta.url).resolve('chinese-days/dist/chinese-days.json');
  const body = JSON.parse(readFileSync(file, 'utf8')) as { holidays: Record<string, string>; workdays: Record<string, string> };
  const holidays = new Set(Object.keys(body.holidays));
  const years = new Set([...holidays].map((d) => Number(d.slice(0, 4))));
  stateDays = { holidays, workdays: new Set(Object.keys(body.workdays)), years };
  return stateDays;
}

/** The State Council's days a calendar uses in `year` and the next (GET /api/calendar), with the years covered. */
export function stateDaysOf(data: WorkCalendar, year: number) {
  if ((data.stateHolidays ?? 'chinese-days') === 'none') return { source: 'none' as const };
  const s = chineseStateDays();
  const near = (d: string) => d.startsWith(`${year}-`) || d.startsWith(`${year + 1}-`);
  return {
    source: 'chinese-days' as const, years: { from: Math.min(...s.years), to: Math.max(...s.years) },
    holidays: [...s.holidays].filter(near).sort(), workdays: [...s.workdays].filter(near).sort(),
  };
}

/** Options of createCalendar: where the warning about a year without official data goes. */
export interface CalendarOptions { warn?: (message: string) => void }
const defaultWarn = (message: string) => process.emitWarning(message, 'CalendarWarning');

export function loadCalendar(file: string | URL = DEFAULT_CALENDAR_FILE): WorkCalendar {
  let body: unknown;
  try {
    body = JSON.parse(readFileSync(file, 'utf8'));
  } catch (err) {
    throw new CsError(CloudErrors.CALENDAR_INVALID, `cannot read work calendar ${String(file)}: ${(err as Error).message}`);
  }
  const r = check(WorkCalendar, body);
  if (!r.ok) throw new CsError(CloudErrors.CALENDAR_INVALID, `work calendar ${String(file)} invalid: ${r.problems.map((p) => `${p.key}: ${p.message}`).join('; ')}`);
  return r.value;
}

export const DEFAULT_CALENDAR: WorkCalendar = loadCalendar();

const MIN = 60_000;
const HOUR = 60 * MIN;
const DAY = 24 * HOUR;

function minutesOf(clock: string): number {
  const [h, m] = clock.split(':').map(Number);
  return h * 60 + m;
}

export interface Calendar {
  readonly data: WorkCalendar;
  isWorkingDay(localDate: string): boolean;
  /** Length of one working day in ms. */
  dayLengthMs: number;
  /** The instant `workMs` of working time after `start`. */
  addWorkingTime(start: number, workMs: number): number;
  /** The absolute instant a limit ends when it starts at `start`. */
  due(start: number, limit: TimeLimit): number;
}

export function createCalendar(data: WorkCalendar = DEFAULT_CALENDAR, opts: CalendarOptions = {}): Calendar {
  const offset = data.utcOffsetMinutes * MIN;
  const holidays = new Set(data.holidays);
  const workdays = new Set(data.workdays);
  const weekend = new Set(data.weekend);
  const official = (data.stateHolidays ?? 'chinese-days') === 'chinese-days' ? chineseStateDays() : undefined;
  const warned = new Set<number>();
  const warn = opts.warn ?? defaultWarn;
  const periods = data.workingHours.map(([a, b]) => [minutesOf(a) * MIN, minutesOf(b) * MIN] as const);
  const dayLengthMs = periods.reduce((s, [a, b]) => s + (b - a), 0);

  function isWorkingDay(localDate: string): boolean {
    if (workdays.has(localDate)) return true;
    if (holidays.has(localDate)) return false;
    if (official) {
      if (official.workdays.has(localDate)) return true;
      if (official.holidays.has(localDate)) return false;
      const year = Number(localDate.slice(0, 4));
      if (!official.years.has(year) && !warned.has(year)) {
        warned.add(year);
        const last = Math.max(...official.years);
        warn(`work calendar "${data.name}": chinese-days has no State Council holidays for ${year} (it covers up to ${last}); ` +
          `${year} counts weekends only, plus the city's own days: update chinese-days or list ${year}'s days in the calendar's holidays and workdays`);
      }
    }
    return !weekend.has(new Date(`${localDate}T00:00:00Z`).getUTCDay());
  }

  function addWorkingTime(start: number, workMs: number): number {
    let remaining = workMs;
    let local = start + offset;
    // Bounded: a calendar with no working day within ten years is a configuration error.
    for (let day = 0; day < 3660; day++) {
      const midnight = Math.floor(local / DAY) * DAY;
      if (isWorkingDay(new Date(midnight).toISOString().slice(0, 10))) {
        for (const [a, b] of periods) {
          const end = midnight + b;
          if (local >= end) continue;
          const begin = Math.max(local, midnight + a);
          if (remaining <= end - begin) return begin + remaining - offset;
          remaining -= end - begin;
          local = end;
        }
      }
      local = midnight + DAY;
    }
    throw new CsError(CloudErrors.CALENDAR_INVALID, `work calendar "${data.name}" has no working time within ten years`);
  }

  return {
    data,
    isWorkingDay,
    dayLengthMs,
    addWorkingTime,
    due(start, limit) {
      switch (limit.unit) {
        case 'minutes': return start + limit.amount * MIN;
        case 'hours': return start + limit.amount * HOUR;
        case 'workHours': return addWorkingTime(start, limit.amount * HOUR);
        case 'workDays': return addWorkingTime(start, limit.amount * dayLengthMs);
      }
    },
  };
}
