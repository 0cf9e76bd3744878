import { describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { amapLink, byDeadline, geoLink, newActionId, offeredActions, predictedState, type CaseDetail } from '../../cloud/web/app/src/crew.ts';
import { legalActions } from '../../cloud/workflow.ts';

/** What the crew's phone offers on a case (cloud/web/app/src/crew.ts), beside the workflow it follows. */

const crew = { username: 'crew-xz-drainage', role: 'crew' as const, unit: 'xz-drainage' };

function detail(over: Partial<CaseDetail> = {}): CaseDetail {
  const state = over.state ?? 'dispatched';
  return {
    id: 'C-20261130-0001', device: 'XZ-WL-002', hazard: 'waterlogging', hazards: ['waterlogging'], class: 'urgent', severity: 'major', state,
    unit: 'xz-drainage', title: 't', description: null, openedAt: '2026-11-30T10:00:00.000Z', updatedAt: '2026-11-30T10:00:00.000Z',
    deadline: '2026-11-30T16:00:00.000Z', overdue: false, milestones: [{ name: 'on-site', due: '2026-11-30T11:00:00.000Z', reachedAt: null }],
    emergency: true, emergencyPeriod: null, lastValue: 0.9, location: { lat: 22.27, lon: 113.57, address: 'a' }, grid: null, componentCode: '1',
    extensionRequest: null, photos: [], history: [], alarms: [], readings: [], allowedActions: legalActions(state), ...over,
  };
}

describe("the crew's actions", () => {
  it('offers what the case allows the crew now, in button order, and nothing of the commander or verifier', () => {
    expect(offeredActions(detail(), crew, [])).toEqual(['accept', 'on-site', 'made-safe', 'note', 'request-extension']);
    expect(offeredActions(detail({ state: 'accepted' }), crew, [])).toEqual(['on-site', 'made-safe', 'note', 'request-extension', 'handle']);
    expect(offeredActions(detail({ state: 'handled' }), crew, [])).toEqual(['note']);
    expect(offeredActions(detail(), null, [])).toEqual([]);
  });

  it('follows the actions waiting on the phone: an accept queued offline offers the handled report next, and nothing twice', () => {
    expect(predictedState('dispatched', ['accept', 'note'])).toBe('accepted');
    expect(predictedState('accepted', ['handle'])).toBe('handled');
    const offered = offeredActions(detail(), crew, ['accept', 'on-site']);
    expect(offered).toContain('handle');
    expect(offered).not.toContain('accept');
    expect(offered).not.toContain('on-site');
    expect(offeredActions(detail({ state: 'accepted' }), crew, ['handle'])).toEqual(['note']);
  });

  it('does not offer a milestone already reached or a second extension request', () => {
    const reached = detail({ milestones: [{ name: 'on-site', due: null, reachedAt: '2026-11-30T10:30:00.000Z' }] });
    expect(offeredActions(reached, crew, [])).not.toContain('on-site');
    const asked = detail({ extensionRequest: { reason: 'r', until: null, at: '2026-11-30T10:30:00.000Z', by: 'user:crew-xz-drainage' } });
    expect(offeredActions(asked, crew, [])).not.toContain('request-extension');
  });

  it('lists overdue cases first, most overdue on top, then by deadline', () => {
    const a = detail({ id: 'a', deadline: '2026-11-30T12:00:00.000Z' });
    const b = detail({ id: 'b', deadline: '2026-11-30T08:00:00.000Z' });
    const c = detail({ id: 'c', deadline: '2026-11-30T09:00:00.000Z' });
    expect([a, b, c].sort(byDeadline).map((x) => x.id)).toEqual(['b', 'c', 'a']);
  });

  it('makes action ids the server accepts (8..64 of [A-Za-z0-9_-]), a new one each time', () => {
    const ids = Array.from({ length: 50 }, newActionId);
    for (const id of ids) expect(id).toMatch(/^[A-Za-z0-9_-]{8,64}$/);
    expect(new Set(ids).size).toBe(ids.length);
  });

  it('links to the phone\'s map app (geo:) and to an AMap marker in WGS-84, lon before lat', () => {
    expect(geoLink(22.27, 113.57)).toBe('geo:22.27,113.57');
    const u = new URL(amapLink(22.27, 113.57, '粤海东路 & 1'));
    expect(u.origin + u.pathname).toBe('https://uri.amap.com/marker');
    expect(u.searchParams.get('position')).toBe('113.57,22.27');
    expect(u.searchParams.get('name')).toBe('粤海东路 & 1');
    expect(u.searchParams.get('coordinate')).toBe('wgs84');
  });
});

describe("the crew's catalogues", () => {
  it('have the same keys in Chinese and English', () => {
    const keys = (o: unknown, p = ''): string[] => Object.entries(o as Record<string, unknown>)
      .flatMap(([k, v]) => (v && typeof v === 'object' ? keys(v, `${p}${k}.`) : [`${p}${k}`])).sort();
    for (const page of ['crew', 'crewCase']) {
      const read = (loc: string) => JSON.parse(readFileSync(new URL(`../../cloud/web/app/src/locales/${loc}/${page}.json`, import.meta.url), 'utf8'));
      expect(keys(read('en')), page).toEqual(keys(read('zh-CN')));
    }
  });
});
