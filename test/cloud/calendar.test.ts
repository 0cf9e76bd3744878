import { describe, expect, it, vi } from 'vitest';
import { chineseStateDays, createCalendar, loadCalendar, DEFAULT_CALENDAR } from '../../cloud/calendar.ts';
import { categoryFor, DEFAULT_CATEGORIES, scheduleFor } from '../../cloud/categories.ts';

/** Local (Asia/Shanghai, UTC+8) wall time to an instant. */
const sh = (local: string) => Date.parse(`${local}+08:00`);
const cal = createCalendar();

describe('work calendar (China, Asia/Shanghai)', () => {
  it('loads the default calendar from its data file: no city days of its own, the State Council\'s from chinese-days', () => {
    const c = loadCalendar();
    expect(c).toMatchObject({ stateHolidays: 'chinese-days', holidays: [], workdays: [], weekend: [0, 6] });
    const state = chineseStateDays();
    expect(state.holidays.has('2026-10-01')).toBe(true);
    expect(['2026-02-14', '2026-09-20', '2026-10-10'].every((d) => state.workdays.has(d))).toBe(true);
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

  it('leaves the State Council\'s days out when a calendar says stateHolidays: none', () => {
    const plain = createCalendar({ ...DEFAULT_CALENDAR, name: 'weekends only', stateHolidays: 'none' });
    expect(plain.isWorkingDay('2026-10-01')).toBe(true);
    expect(plain.isWorkingDay('2026-10-10')).toBe(false);
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

describe('State Council days from chinese-days, city overrides on top', () => {
  // chinese-days 1.5.7 ends with 2026 (the 2027 notice is not in it yet): its latest year is tested.
  it.each([
    ['2026-02-14', true, 'Saturday before the Spring Festival, a make-up working day'],
    ['2026-02-15', false, 'Spring Festival, first day off (a Sunday)'],
    ['2026-02-17', false, 'Spring Festival (春节, a Tuesday)'],
    ['2026-02-23', false, 'Spring Festival, last day off (a Monday)'],
    ['2026-02-24', true, 'the first working day after it'],
    ['2026-02-28', true, 'Saturday after it, a make-up working day'],
  ])('%s is a working day: %s (%s)', (day, working) => {
    expect(chineseStateDays().years.has(2026)).toBe(true);
    expect(cal.isWorkingDay(day)).toBe(working);
  });

  it('runs a deadline of 2 working days across the Spring Festival', () => {
    // Friday 13 Feb 16:00: 1.5 h that day, 7 h on the make-up Saturday 14th, 15th-23rd off, 5.5 h on Tuesday 24th.
    expect(cal.due(sh('2026-02-13T16:00:00'), { amount: 2, unit: 'workDays' })).toBe(sh('2026-02-24T16:00:00'));
  });

  it('lets the city\'s own days win over the package: a typhoon day off, a working day in the holiday', () => {
    const city = createCalendar({ ...DEFAULT_CALENDAR, holidays: ['2026-02-14', '2026-11-25'], workdays: ['2026-02-23'] });
    expect(city.isWorkingDay('2026-02-14')).toBe(false);
    expect(city.isWorkingDay('2026-11-25')).toBe(false);
    expect(city.isWorkingDay('2026-02-23')).toBe(true);
    // Friday 13 Feb 16:00: 1.5 h, Saturday 14th off (typhoon), Monday 23rd worked: 7 h, 5.5 h on Tuesday 24th.
    expect(city.due(sh('2026-02-13T16:00:00'), { amount: 2, unit: 'workDays' })).toBe(sh('2026-02-24T16:00:00'));
    expect(city.due(sh('2026-02-13T16:00:00'), { amount: 1, unit: 'workDays' })).toBe(sh('2026-02-23T16:00:00'));
  });

  it('counts weekends only in a year beyond the package and warns once', () => {
    const year = Math.max(...chineseStateDays().years) + 1;
    const warn = vi.fn();
    const c = createCalendar(DEFAULT_CALENDAR, { warn });
    const days = Array.from({ length: 14 }, (_, i) => new Date(Date.UTC(year, 0, 1 + i)).toISOString().slice(0, 10));
    for (const d of days) expect(c.isWorkingDay(d)).toBe(![0, 6].includes(new Date(`${d}T00:00:00Z`).getUTCDay()));
    // 1 January is a holiday every year, but not known here: a weekday 1 January counts as working.
    c.due(Date.parse(`${year}-01-01T09:00:00+08:00`), { amount: 3, unit: 'workDays' });
    expect(warn).toHaveBeenCalledTimes(1);
    expect(warn.mock.calls[0][0]).toMatch(new RegExp(`no State Council holidays for ${year}.*weekends only`));
    expect(c.isWorkingDay('2026-02-17')).toBe(false);
    expect(warn).toHaveBeenCalledTimes(1);
  });
});
