import { readFileSync } from 'node:fs';
import { Type, type Static } from '@sinclair/typebox';
import { check } from '../lib/schema.ts';
import { CsError } from '../lib/errors.ts';
import { CloudErrors } from './errors.ts';

/**
 * The work calendar and time limits (docs/domain.md#glossary): limits are written in continuous
 * minutes/hours (紧急工作时), working hours (工作时) or working days (工作日) and turned into absolute
 * instants. Working time runs only inside `workingHours` on working days: weekdays minus public
 * holidays, plus the adjusted working weekend days (调休). Asia/Shanghai is UTC+8 without DST, so a
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
  /** Public holidays (local dates). */
  holidays: Type.Array(DateStr, { default: [] }),
  /** Weekend days that are working days (调休). */
  workdays: Type.Array(DateStr, { default: [] }),
}, { additionalProperties: false });
export type WorkCalendar = Static<typeof WorkCalendar>;

export const TimeUnit = Type.Union([Type.Literal('minutes'), Type.Literal('hours'), Type.Literal('workHours'), Type.Literal('workDays')]);
export type TimeUnit = Static<typeof TimeUnit>;
export const TimeLimit = Type.Object({ amount: Type.Number({ exclusiveMinimum: 0 }), unit: TimeUnit }, { additionalProperties: false });
export type TimeLimit = Static<typeof TimeLimit>;

export const DEFAULT_CALENDAR_FILE = new URL('./data/calendar-cn-2026.json', import.meta.url);

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

export function createCalendar(data: WorkCalendar = DEFAULT_CALENDAR): Calendar {
  const offset = data.utcOffsetMinutes * MIN;
  const holidays = new Set(data.holidays);
  const workdays = new Set(data.workdays);
  const weekend = new Set(data.weekend);
  const periods = data.workingHours.map(([a, b]) => [minutesOf(a) * MIN, minutesOf(b) * MIN] as const);
  const dayLengthMs = periods.reduce((s, [a, b]) => s + (b - a), 0);

  function isWorkingDay(localDate: string): boolean {
    if (workdays.has(localDate)) return true;
    if (holidays.has(localDate)) return false;
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
