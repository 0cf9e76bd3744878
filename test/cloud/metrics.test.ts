import { request, type ClientRequest } from 'node:http';
import { afterEach, describe, expect, it } from 'vitest';
import { buildCloud, type Cloud, type DbOptions } from '../../cloud/app.ts';
import { openDatabase } from '../../cloud/db/database.ts';
import { topics } from '../../lib/topics.ts';
import { BACKENDS, district, freshDatabase, profiles, reading, type Backend } from './fixtures.ts';
import { eventually } from '../helpers/process.ts';
import { metric } from '../helpers/metrics.ts';

/**
 * The cloud's GET /metrics moves with the load it gets (README "Metrics"): readings stored and
 * rejected, the ingest latency and batch commit histograms, database query time, cases by state and
 * class, overdue cases, the case clock's reminders and escalations, live event streams.
 */

const T0 = Date.parse('2026-11-25T02:00:00Z');
const MIN = 60_000;
const WL = { gw: 'gw-xz-jida', id: 'XZ-WL-001' };
const UP = topics.up(WL.gw, WL.id);
const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function caseRow(db: DbOptions) {
  const d = openDatabase(db);
  try {
    return await d.db.selectFrom('cases').select(['state', 'class', 'deadline_at']).executeTakeFirstOrThrow();
  } finally {
    await d.close();
  }
}

describe.each(BACKENDS)('cloud metrics on $backend', ({ backend, skip }: { backend: Backend; skip: boolean }) => {
  it.skipIf(skip)('counters, histograms and case gauges move with readings, a breach and the case clock', async () => {
    const fresh = await freshDatabase(backend);
    cleanups.push(fresh.drop);
    let clock = T0;
    const cloud: Cloud = await buildCloud({ db: fresh.db, district, profiles, now: () => clock, emergency: false, escalation: { tickMs: 3_600_000 } });
    cleanups.push(() => cloud.stop());
    await cloud.start();
    const auth = { authorization: `Bearer ${await cloud.tokens.create('operator')}` };
    const scrape = async () => {
      const res = await cloud.app.inject({ url: '/metrics', headers: auth });
      expect(res.statusCode).toBe(200);
      return res.body;
    };

    const before = await scrape();
    expect(metric(before, 'cs_cloud_ingest_latency_seconds_count')).toBe(0);
    expect(metric(before, 'cs_cloud_cases', { state: 'dispatched', class: 'urgent' })).toBe(0);
    for (let seq = 1; seq <= 5; seq++) expect((await cloud.ingest(WL.gw, UP, reading(WL.id, seq, T0 + seq * 1000, { level_m: 0.1 }))).status).toBe('stored');
    expect(await cloud.ingest(WL.gw, UP, reading(WL.id, 6, T0 + 6000, { level_m: 0.92 }))).toMatchObject({ status: 'stored', cases: [{ action: 'opened' }] });
    expect((await cloud.ingest(WL.gw, UP, Buffer.from('{not json'))).status).toBe('rejected');

    const after = await scrape();
    expect(metric(after, 'cs_cloud_ingest_latency_seconds_count')).toBe(6);
    expect(metric(after, 'cs_cloud_ingest_latency_seconds_sum')).toBeGreaterThan(0);
    expect(metric(after, 'cs_cloud_db_batch_commit_seconds_count')).toBeGreaterThanOrEqual(1);
    expect(metric(after, 'cs_cloud_db_batch_readings_sum')).toBe(6);
    expect(metric(after, 'cs_cloud_db_query_seconds_count', { outcome: 'ok' })).toBeGreaterThan(metric(before, 'cs_cloud_db_query_seconds_count', { outcome: 'ok' }));
    expect(metric(after, 'cs_cloud_readings_total', { outcome: 'stored' })).toBe(6);
    expect(metric(after, 'cs_cloud_readings_rejected_total', { reason: 'bad-json' })).toBe(1);
    expect(metric(after, 'cs_cloud_cases_total', { action: 'opened' })).toBe(1);
    const c = await caseRow(fresh.db);
    expect(metric(after, 'cs_cloud_cases', { state: c.state, class: c.class })).toBe(1);
    expect(metric(after, 'cs_cloud_cases', { state: 'closed', class: c.class })).toBe(0);
    expect(metric(after, 'cs_cloud_cases_overdue', { class: c.class })).toBe(0);
    expect(after).toMatch(/^cs_cloud_event_loop_lag_seconds\{stat="p99"\} \S+$/m);

    // Just before the deadline: a reminder, and an escalation (not accepted within 15 minutes).
    clock = Number(c.deadline_at) - MIN;
    await cloud.escalator!.tick();
    const near = await scrape();
    expect(metric(near, 'cs_cloud_case_reminders_total')).toBe(1);
    expect(metric(near, 'cs_cloud_case_escalations_total')).toBeGreaterThanOrEqual(1);
    expect(metric(near, 'cs_cloud_cases_overdue', { class: c.class })).toBe(0);
    clock = Number(c.deadline_at) + MIN;
    expect(metric(await scrape(), 'cs_cloud_cases_overdue', { class: c.class })).toBe(1);
  });
});

describe('cloud metrics: live event streams', () => {
  it('counts an open GET /api/events stream and forgets it when the client goes', async () => {
    const fresh = await freshDatabase('sqlite');
    cleanups.push(fresh.drop);
    const cloud = await buildCloud({ db: fresh.db, district, profiles, escalation: false, emergency: false });
    cleanups.push(() => cloud.stop());
    await cloud.start();
    const base = await cloud.app.listen({ port: 0, host: '127.0.0.1' });
    const auth = { authorization: `Bearer ${await cloud.tokens.create('admin')}` };
    const sse = async () => metric((await cloud.app.inject({ url: '/metrics', headers: auth })).body, 'cs_cloud_sse_clients');
    expect(await sse()).toBe(0);
    const { req, status } = await new Promise<{ req: ClientRequest; status?: number }>((resolve, reject) => {
      const r = request(`${base}/api/events`, { headers: auth }, (res) => resolve({ req: r, status: res.statusCode }));
      r.on('error', reject);
      r.end();
    });
    expect(status).toBe(200);
    expect(await sse()).toBe(1);
    req.destroy();
    await eventually(async () => (await sse()) === 0, 5_000, 20);
  });
});

describe('cloud metrics: notification outcomes', () => {
  it('counts POST /api/notifications/outcomes by channel and outcome; refuses bad bodies (400) and other roles (403)', async () => {
    const fresh = await freshDatabase('sqlite');
    cleanups.push(fresh.drop);
    const cloud = await buildCloud({ db: fresh.db, district, profiles, escalation: false, emergency: false });
    cleanups.push(() => cloud.stop());
    await cloud.start();
    const admin = { authorization: `Bearer ${await cloud.tokens.create('admin')}` };
    const integrator = { authorization: `Bearer ${await cloud.tokens.create('integrator')}` };
    const post = (headers: Record<string, string>, payload: unknown) => cloud.app.inject({ method: 'POST', url: '/api/notifications/outcomes', headers, payload: payload as object });
    const count = async (channel: string, outcome: string) => metric((await cloud.app.inject({ url: '/metrics', headers: admin })).body, 'cs_cloud_notifications_total', { channel, outcome });

    expect(await count('wecom', 'failed')).toBe(0);
    expect((await post(integrator, { channel: 'wecom', outcome: 'failed', caseId: 'C-1', event: 'dispatched' })).json()).toEqual({ counted: 1 });
    const batch = await post(admin, [{ channel: 'sms', outcome: 'sent' }, { channel: 'sms', outcome: 'sent' }, { channel: 'webhook', outcome: 'failed' }]);
    expect(batch.statusCode).toBe(200);
    expect([await count('wecom', 'failed'), await count('sms', 'sent'), await count('webhook', 'failed'), await count('dingtalk', 'sent')]).toEqual([1, 2, 1, 0]);

    for (const bad of [{}, { channel: 'fax', outcome: 'sent' }, { channel: 'sms', outcome: 'lost' }, { channel: 'sms' }, [], [{ channel: 'sms', outcome: 'sent' }, { channel: 'pager', outcome: 'sent' }]]) {
      const res = await post(integrator, bad);
      expect(res.statusCode, JSON.stringify(bad)).toBe(400);
      expect(res.json()).toMatchObject({ code: expect.any(String), message: expect.any(String) });
    }
    for (const role of ['crew', 'operator'] as const) {
      const token = await cloud.tokens.create(role, role === 'crew' ? 'xz-drainage' : undefined);
      expect((await post({ authorization: `Bearer ${token}` }, { channel: 'sms', outcome: 'sent' })).statusCode).toBe(403);
    }
    expect((await post({}, { channel: 'sms', outcome: 'sent' })).statusCode).toBe(401);
    expect(await count('sms', 'sent')).toBe(2);
  });
});
