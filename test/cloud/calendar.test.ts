import { describe, expect, it } from 'vitest';
import { createCalendar, loadCalendar, DEFAULT_CALENDAR } from '../../cloud/calendar.ts';
import { categoryFor, DEFAULT_CATEGORIES, scheduleFor } from '../../cloud/categories.ts';

/** Local (Asia/Shanghai, UTC+8) wall time to an instant. */
const sh = (local: string) => Date.parse(`${local}+08:00`);
const cal = createCalendar();

describe('work calendar (China 2026, Asia/Shanghai)', () => {
  it('loads the default 2026 calendar from its data file', () => {
    const c = loadCalendar();
    expect(c.holidays).toContain('2026-10-01');
    expect(c.workdays).toEqual(expect.arrayContaining(['2026-02-14', '2026-09-20', '2026-10-10']));
    expect(cal.dayLengthMs).toBe(7 * 3_600_000);
  });

  it.each([
    ['2026-11-25', true, 'an ordinary Wednesday'],
    ['2026-11-28', false, 'a Saturday'],
    ['2026-10-05', false, 'a National Day holiday on a Monday'],
    ['2026-10-10', true, 'a Saturday made a working day (调休)'],
    ['2026-02-14', true, 'the Saturday before the Spring Festival (调休)'],
    ['2026-02-18', false, 'a Spring Festival Wednesday'],
  ])('%s is a working day: %s (%s)', (day, working) => {
    expect(cal.isWorkingDay(day)).toBe(working);
  });

  it('counts continuous hours straight through nights and weekends', () => {
    expect(cal.due(sh('2026-11-27T22:00:00'), { amount: 6, unit: 'hours' })).toBe(sh('2026-11-28T04:00:00'));
    expect(cal.due(sh('2026-11-27T22:00:00'), { amount: 30, unit: 'minutes' })).toBe(sh('2026-11-27T22:30:00'));
  });

  it('counts working hours across the lunch break and the night', () => {
    expect(cal.due(sh('2026-11-25T11:00:00'), { amount: 2, unit: 'workHours' })).toBe(sh('2026-11-25T15:00:00'));
    expect(cal.due(sh('2026-11-25T17:00:00'), { amount: 2, unit: 'workHours' })).toBe(sh('2026-11-26T10:00:00'));
    // Registered at night: the clock starts at 08:30.
    expect(cal.due(sh('2026-11-25T23:00:00'), { amount: 1, unit: 'workHours' })).toBe(sh('2026-11-26T09:30:00'));
  });

  it('skips the weekend', () => {
    expect(cal.due(sh('2026-11-27T16:00:00'), { amount: 1, unit: 'workDays' })).toBe(sh('2026-11-30T16:00:00'));
    expect(cal.due(sh('2026-11-28T10:00:00'), { amount: 1, unit: 'workHours' })).toBe(sh('2026-11-30T09:30:00'));
  });

  it('skips the National Day holiday and works the adjusted Saturday', () => {
    // Wednesday 30 September 16:00: 1.5 h left that day; 1 October to 7 October off; Thursday 8th and Friday 9th work.
    expect(cal.due(sh('2026-09-30T16:00:00'), { amount: 2, unit: 'workHours' })).toBe(sh('2026-10-08T09:00:00'));
    // Friday 9 October 16:00, one working day: Saturday 10th is a working day (调休).
    expect(cal.due(sh('2026-10-09T16:00:00'), { amount: 1, unit: 'workDays' })).toBe(sh('2026-10-10T16:00:00'));
  });

  it('skips the whole Spring Festival', () => {
    expect(cal.due(sh('2026-02-14T17:00:00'), { amount: 1, unit: 'workHours' })).toBe(sh('2026-02-24T09:00:00'));
  });

  it('accepts another calendar as data', () => {
    const sixDays = createCalendar({ ...DEFAULT_CALENDAR, name: 'six-day week', weekend: [0], holidays: [], workdays: [] });
    expect(sixDays.due(sh('2026-11-27T16:00:00'), { amount: 1, unit: 'workDays' })).toBe(sh('2026-11-28T16:00:00'));
  });
});

describe('deadlines', () => {
  const wl = categoryFor(DEFAULT_CATEGORIES, 'waterlogging', 'urgent');
  const cover = categoryFor(DEFAULT_CATEGORIES, 'cover-open', 'urgent');
  const high = categoryFor(DEFAULT_CATEGORIES, 'pressure-high', 'routine');

  it('gives a manhole cover its sub-deadlines: on site in 30 min, made safe in 2 h, repaired in 6 h, as instants', () => {
    const at = sh('2026-11-28T23:40:00');
    const s = scheduleFor(cover, 'urgent', at, { calendar: cal });
    expect(s.deadline).toBe(sh('2026-11-29T05:40:00'));
    expect(s.milestones).toEqual([{ name: 'on-site', due: sh('2026-11-29T00:10:00') }, { name: 'made-safe', due: sh('2026-11-29T01:40:00') }]);
    expect(s.emergency).toBe(true);
  });

  it('runs a routine working-day limit over the weekend in normal mode', () => {
    const at = sh('2026-11-27T16:00:00');
    expect(scheduleFor(high, 'routine', at, { calendar: cal }).deadline).toBe(sh('2026-11-30T16:00:00'));
  });

  it('caps every hazard case at 12 hours in emergency mode, even a routine one over a weekend', () => {
    const at = sh('2026-11-27T16:00:00');
    const s = scheduleFor(high, 'routine', at, { calendar: cal, emergency: true });
    expect(s.deadline).toBe(at + 12 * 3_600_000);
    expect(s.emergency).toBe(true);
    const routineFlood = scheduleFor(wl, 'routine', sh('2026-09-30T16:00:00'), { calendar: cal, emergency: true });
    expect(routineFlood.deadline).toBe(sh('2026-10-01T04:00:00'));
  });

  it('leaves device-health limits unchanged in emergency mode', () => {
    const battery = categoryFor(DEFAULT_CATEGORIES, 'low-battery', 'device-health');
    const at = sh('2026-11-27T16:00:00');
    expect(scheduleFor(battery, 'device-health', at, { calendar: cal, emergency: true }).deadline).toBe(sh('2026-12-01T16:00:00'));
  });

  it('caps an urgent category that allows more at 12 hours', () => {
    const at = sh('2026-11-25T10:00:00');
    expect(scheduleFor({ title: 'slow', class: 'urgent', limit: { amount: 3, unit: 'workDays' }, unit: 'owner' }, 'urgent', at, { calendar: cal }).deadline).toBe(at + 12 * 3_600_000);
  });
});
