import { afterEach, describe, expect, it } from 'vitest';
import { buildCloud, type Cloud } from '../../cloud/app.ts';
import { district, freshDatabase, profiles } from './fixtures.ts';

/**
 * The public page of the units' ranking (docs/evaluation.md#public-ranking): off until an admin turns it
 * on, then the month's rank, score and rates per unit for anyone, the same figures as GET /api/evaluation,
 * and nothing about cases or people.
 */

let open: { cloud: Cloud; drop(): Promise<void> } | undefined;
afterEach(async () => {
  await open?.cloud.stop();
  await open?.drop();
  open = undefined;
});

async function serve(now?: () => number) {
  const fresh = await freshDatabase('sqlite');
  const cloud = await buildCloud({ db: fresh.db, district, profiles, escalation: false, emergency: false, now });
  open = { cloud, drop: fresh.drop };
  await cloud.start();
  const base = await cloud.app.listen({ host: '127.0.0.1', port: 0 });
  const call = async (method: string, path: string, token?: string, body?: unknown) => {
    const r = await fetch(`${base}${path}`, {
      method, headers: { ...(token ? { authorization: `Bearer ${token}` } : {}), ...(body ? { 'content-type': 'application/json' } : {}) },
      body: body ? JSON.stringify(body) : undefined,
    });
    return { status: r.status, body: (await r.json()) as any };
  };
  return { cloud, call };
}

describe('the public ranking', () => {
  it('is off by default: anyone gets a 404 naming why, and only an admin may see or change the setting', async () => {
    const { cloud, call } = await serve();
    const off = await call('GET', '/api/public/ranking');
    expect(off.status).toBe(404);
    expect(off.body.code).toBe('CS_CLOUD_RANKING_NOT_PUBLISHED');
    const operator = await cloud.tokens.create('operator');
    expect((await call('PUT', '/api/evaluation/public', operator, { enabled: true })).status).toBe(403);
    expect((await call('GET', '/api/evaluation/public', operator)).status).toBe(403);
    expect((await call('PUT', '/api/evaluation/public', undefined, { enabled: true })).status).toBe(401);
    const admin = await cloud.tokens.create('admin');
    expect((await call('GET', '/api/evaluation/public', admin)).body).toEqual({ enabled: false, updatedAt: null, updatedBy: null });
    expect((await call('PUT', '/api/evaluation/public', admin, { enabled: 'yes' })).status).toBe(400);
    expect((await call('GET', '/api/public/ranking')).status).toBe(404);
  });

  it('once on, answers the month\'s figures per unit as the evaluation has them, without case ids or people; off again, 404', async () => {
    const { cloud, call } = await serve();
    const inspector = await cloud.tokens.create('inspector');
    const ids: string[] = [];
    for (const [category, description] of [['E0101', '暴露垃圾'], ['E0102', '道路积水'], ['C0101', '井盖破损']] as const) {
      const r = await call('POST', '/api/cases', inspector, { category, description, location: { lat: 22.27, lon: 113.55, address: '凤凰北路' } });
      expect(r.status, JSON.stringify(r.body)).toBe(201);
      ids.push(r.body.id);
    }
    const admin = await cloud.tokens.create('admin');
    const on = await call('PUT', '/api/evaluation/public', admin, { enabled: true });
    expect(on.body).toMatchObject({ enabled: true, updatedBy: expect.stringMatching(/^token:/), updatedAt: expect.any(String) });

    const pub = await call('GET', '/api/public/ranking');
    expect(pub.status).toBe(200);
    const evaluation = (await call('GET', '/api/evaluation?by=unit', admin)).body;
    expect(pub.body.period).toMatchObject({ month: evaluation.period.month, from: evaluation.period.from, to: evaluation.period.to, complete: false });
    expect(pub.body.units.map((u: { unit: string }) => u.unit)).toEqual(evaluation.groups.map((g: { key: string }) => g.key));
    for (const u of pub.body.units) {
      const g = evaluation.groups.find((x: { key: string }) => x.key === u.unit);
      expect(u).toEqual({
        rank: g.rank, unit: g.key, name: g.name, score: g.score, due: g.figures.due, closed: g.figures.closed,
        closedOnTime: g.figures.closedOnTime, closureRate: g.figures.closureRate, onTimeRate: g.figures.onTimeRate,
      });
    }
    expect(pub.body.units).toHaveLength(district.units.length);
    expect(pub.body.chain).toEqual({ cases: evaluation.chain.cases, digest: evaluation.chain.digest });
    const text = JSON.stringify(pub.body);
    for (const id of ids) expect(text).not.toContain(id);
    expect(text).not.toContain('token:');

    const bad = await call('GET', '/api/public/ranking?month=2026-13');
    expect(bad.status).toBe(400);
    expect((await call('PUT', '/api/evaluation/public', admin, { enabled: false })).body.enabled).toBe(false);
    expect((await call('GET', '/api/public/ranking')).status).toBe(404);
  });

  // Guards against an unauthenticated caller making the cloud evaluate (and keep) any month 0000-9999.
  it('refuses months not started yet or before 2000, and keeps at most 13 months (the oldest dropped)', async () => {
    let t = Date.parse('2026-11-15T02:00:00Z');
    const { cloud, call } = await serve(() => t);
    const admin = await cloud.tokens.create('admin');
    await call('PUT', '/api/evaluation/public', admin, { enabled: true });
    for (const month of ['2026-12', '9999-01', '1999-12', '0999-01', '0000-01']) {
      const r = await call('GET', `/api/public/ranking?month=${month}`);
      expect(r.status, month).toBe(400);
      expect(r.body.code).toBe('CS_CLOUD_BAD_QUERY');
      expect(r.body.message).toContain(month);
    }
    expect((await call('GET', '/api/public/ranking?month=2000-01')).status).toBe(200);
    const months = Array.from({ length: 14 }, (_, i) => new Date(Date.UTC(2025, 9 + i, 1)).toISOString().slice(0, 7)); // 2025-10 .. 2026-11
    const first = new Map<string, string>();
    for (const m of months) {
      t += 1000;
      const r = await call('GET', `/api/public/ranking?month=${m}`);
      expect(r.status, m).toBe(200);
      first.set(m, r.body.generatedAt);
    }
    t += 1000;
    // The 13 latest are still kept (same answer); the oldest was dropped and is evaluated again.
    expect((await call('GET', '/api/public/ranking?month=2026-11')).body.generatedAt).toBe(first.get('2026-11'));
    expect((await call('GET', '/api/public/ranking?month=2025-11')).body.generatedAt).toBe(first.get('2025-11'));
    expect((await call('GET', '/api/public/ranking?month=2025-10')).body.generatedAt).not.toBe(first.get('2025-10'));
  });
});
