import { describe, expect, it } from 'vitest';
import { byUrgency, fromZoneInput, toZoneInput, type BoardCase } from '../../cloud/web/app/src/components/command-board.ts';

/** The command board's rules (cloud/web/app/src/components/command-board.ts): case order and the city-zone deadline field. */

const NOW = Date.parse('2026-09-14T02:00:00Z');
const at = (minutes: number) => new Date(NOW + minutes * 60_000).toISOString();
const kase = (id: string, state: string, deadlineMin: number): BoardCase => ({
  id, device: 'XZ-WL-001', hazard: 'waterlogging', severity: 'major', state, unit: 'xz-drainage', class: 'urgent',
  emergencyPeriod: null, title: id, address: null, openedAt: at(-600), deadline: at(deadlineMin),
});

describe('the board\'s case order', () => {
  it('puts overdue running cases first, most overdue first, then the rest by deadline; a handled case past its deadline is not overdue', () => {
    const rows = byUrgency([kase('soon', 'accepted', 30), kase('late', 'dispatched', -5), kase('later', 'dispatched', 120), kase('waiting', 'handled', -60), kase('latest', 'accepted', -90)], NOW);
    expect(rows.map((r) => [r.id, r.overdue])).toEqual([['latest', true], ['late', true], ['waiting', false], ['soon', false], ['later', false]]);
  });
});

describe('the new deadline entered in the city\'s zone', () => {
  it('shows an instant as Zhuhai wall time and reads it back to the same instant, whatever zone the wall screen runs in', () => {
    expect(toZoneInput('2026-09-14T02:00:00.000Z', 'Asia/Shanghai')).toBe('2026-09-14T10:00');
    expect(fromZoneInput('2026-09-14T10:00', 'Asia/Shanghai')).toBe('2026-09-14T02:00:00.000Z');
    // Across midnight and in a zone with daylight saving.
    expect(toZoneInput('2026-09-14T20:30:00.000Z', 'Asia/Shanghai')).toBe('2026-09-15T04:30');
    expect(fromZoneInput(toZoneInput('2026-07-01T12:15:00.000Z', 'Europe/Berlin'), 'Europe/Berlin')).toBe('2026-07-01T12:15:00.000Z');
  });

  it('answers null for an empty or malformed field instead of an invalid date', () => {
    expect(fromZoneInput('', 'Asia/Shanghai')).toBeNull();
    expect(fromZoneInput('tomorrow', 'Asia/Shanghai')).toBeNull();
  });
});
