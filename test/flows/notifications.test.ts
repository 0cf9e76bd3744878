import { createHmac } from 'node:crypto';
import { createRequire } from 'node:module';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { topics } from '../../lib/topics.ts';
import { reading } from '../cloud/fixtures.ts';
import { eventually } from '../helpers/process.ts';
import { metric } from '../helpers/metrics.ts';
import { receiver, shippedFlow, startStack, withEnv, type Received } from './flow-stack.ts';

/**
 * The case notification flow (flows/flows/notifications.json) end to end: a reading opens a dispatched
 * case in the cloud, its event reaches the flow over MQTT (citysteward-events, the case read by citysteward-case), and the unit's contacts are told by webhook,
 * WeCom and DingTalk robots and an SMS gateway, all receivers started by the test; the flow counts
 * sent and failed notifications per channel on its metrics endpoint and reports each to the cloud's /metrics.
 */

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

const require = createRequire(import.meta.url);
const citysteward = ['server', 'events', 'case'].map((n) => require(`../../flows/node-red-contrib-citysteward/${n}.js`) as (RED: unknown) => void);
const json = (r: Received) => JSON.parse(r.body) as Record<string, any>;

/** The cloud and broker, the receivers, a contacts file of `units` (and the command centre) and the loaded flow. */
async function setup(units: (r: Record<string, string>) => object, opts: Parameters<typeof startStack>[0] = {}) {
  const stack = await startStack(opts);
  cleanups.push(() => stack.close());
  const ok = { body: '{"errcode":0,"errmsg":"ok"}' };
  const webhook = await receiver();
  // A WeCom robot whose key was revoked answers 200 with an error code.
  const wecom = await receiver((r) => (r.url.includes('key=revoked') ? { body: '{"errcode":93000,"errmsg":"invalid webhook url"}' } : ok));
  const dingtalk = await receiver(() => ok);
  const sms = await receiver(() => ({ body: '{"code":"OK"}' }));
  for (const r of [webhook, wecom, dingtalk, sms]) cleanups.push(() => r.close());
  const dir = mkdtempSync(join(tmpdir(), 'cs-notify-'));
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  const contacts = join(dir, 'contacts.json');
  writeFileSync(contacts, JSON.stringify({ language: 'zh', timeZone: 'Asia/Shanghai', ...units({ webhook: webhook.url, wecom: wecom.url, dingtalk: dingtalk.url, sms: sms.url }) }));
  // The server node as `citysteward flows` would provision it: the integrator's API token and read-only MQTT identity.
  const flow = withEnv(shippedFlow('notifications'), { CS_NOTIFY_CONTACTS: contacts })
    .map((n) => (n.type === 'citysteward-server' ? { ...n, url: stack.base, broker: stack.mqttUrl } : n));
  const subscribed = new Promise<void>((resolve) => stack.broker.on('subscribe', (subs) => { if (subs.some((x) => x.topic === 'cs/v1/events/case/escalated')) resolve(); }));
  const red = await stack.load(flow, {
    'cs-notify-server': { token: await stack.token('integrator'), mqttUsername: stack.mqttUser.username, mqttPassword: stack.mqttUser.password },
  }, citysteward);
  await subscribed;
  return { stack, red, webhook, wecom, dingtalk, sms };
}

describe('the case notification flow', () => {
  it('tells the unit of a dispatched case by webhook, WeCom, DingTalk and SMS, with the unit and the deadline, and counts them', async () => {
    const { stack, red, webhook, wecom, dingtalk, sms } = await setup((u) => ({
      units: {
        'xz-drainage': {
          name: '香洲区排水管理所', nameEn: 'Xiangzhou Drainage Office',
          channels: [
            { type: 'webhook', url: `${u.webhook}/hook`, language: 'en', headers: { authorization: 'Bearer hook-secret' } },
            { type: 'wecom', url: `${u.wecom}/cgi-bin/webhook/send?key=k1` },
            { type: 'wecom', url: `${u.wecom}/cgi-bin/webhook/send?key=revoked`, format: 'text', mentionMobiles: ['13800000000'] },
            { type: 'dingtalk', url: `${u.dingtalk}/robot/send?access_token=t1`, secret: 'SECdemo', mentionMobiles: ['13800000001'] },
            { type: 'sms', url: `${u.sms}/sms`, to: ['+8613800000002'] },
          ],
        },
      },
    }));

    // A water level over the urgent tier opens a case dispatched to the drainage office.
    await stack.cloud.ingest('gw-xz-jida', topics.up('gw-xz-jida', 'XZ-WL-001'), reading('XZ-WL-001', 1, Date.now(), { level_m: 0.92 }));
    await eventually(() => webhook.requests.length === 1 && wecom.requests.length === 2 && dingtalk.requests.length === 1 && sms.requests.length === 1);
    const cases = (await (await fetch(`${stack.base}/api/cases?device=XZ-WL-001`, { headers: { authorization: `Bearer ${await stack.token('operator')}` } })).json()) as { items: { id: string; deadline: string; title: string }[] };
    const c = cases.items[0];

    const hook = json(webhook.requests[0]);
    expect(webhook.requests[0].headers.authorization).toBe('Bearer hook-secret');
    expect(hook).toMatchObject({ kind: 'dispatched', event: 'case.opened', caseId: c.id, unit: 'xz-drainage', unitName: 'Xiangzhou Drainage Office', deadline: c.deadline, state: 'dispatched', language: 'en' });
    expect(hook.text).toMatch(new RegExp(`^\\[CitySteward\\] Case dispatched\nCase ${c.id} dispatched to Xiangzhou Drainage Office: .+ Deadline \\d\\d/\\d\\d/\\d{4}, \\d\\d:\\d\\d\\.$`));

    // The deadline as the unit reads it: local time in Zhuhai.
    const local = new Date(c.deadline).toLocaleString('zh-CN', { timeZone: 'Asia/Shanghai', hour12: false, year: 'numeric', month: '2-digit', day: '2-digit', hour: '2-digit', minute: '2-digit' });
    const [md, text] = [wecom.requests.find((r) => r.url.includes('k1'))!, wecom.requests.find((r) => r.url.includes('revoked'))!].map(json);
    expect(md).toEqual({ msgtype: 'markdown', markdown: { content: expect.stringContaining(`案件 ${c.id} 已派遣给 香洲区排水管理所：${c.title}。处置时限 ${local}。`) } });
    expect(md.markdown.content).toMatch(/^### 【CitySteward 数字城管】案件已派遣\n/);
    expect(text.text.content).toMatch(/^【CitySteward 数字城管】案件已派遣\n案件 /);
    expect(text).toEqual({ msgtype: 'text', text: { content: expect.stringContaining(`处置时限 ${local}`), mentioned_mobile_list: ['13800000000'] } });

    const ding = dingtalk.requests[0];
    expect(json(ding)).toEqual({ msgtype: 'text', text: { content: expect.stringContaining(`案件 ${c.id} 已派遣给 香洲区排水管理所`) }, at: { atMobiles: ['13800000001'], isAtAll: false } });
    // Signed as DingTalk documents: base64 HMAC-SHA256 of "timestamp\nsecret" keyed by the secret.
    const q = new URL(ding.url, dingtalk.url).searchParams;
    expect(q.get('access_token')).toBe('t1');
    expect(q.get('sign')).toBe(createHmac('sha256', 'SECdemo').update(`${q.get('timestamp')}\nSECdemo`).digest('base64'));
    expect(Math.abs(Date.now() - Number(q.get('timestamp')))).toBeLessThan(60_000);

    expect(json(sms.requests[0])).toEqual({ to: ['+8613800000002'], content: expect.stringContaining(`处置时限 ${local}`) });

    const scrape = async () => (await fetch(`${red.url}/citysteward/notifications/metrics`)).text();
    const body = await eventually(async () => { const b = await scrape(); return metric(b, 'cs_flows_notifications_total', { channel: 'sms', outcome: 'sent' }) === 1 && b; });
    expect(body).toContain('# TYPE cs_flows_notifications_total counter');
    const count = (channel: string, outcome: string) => metric(body, 'cs_flows_notifications_total', { channel, outcome });
    expect([count('webhook', 'sent'), count('wecom', 'sent'), count('wecom', 'failed'), count('dingtalk', 'sent'), count('sms', 'failed')]).toEqual([1, 1, 1, 1, 0]);

    // Each outcome is reported to the cloud too: its /metrics counts them by channel (the revoked WeCom robot as failed).
    const admin = { authorization: `Bearer ${await stack.token('admin')}` };
    const cloudScrape = async () => (await fetch(`${stack.base}/metrics`, { headers: admin })).text();
    const CHANNELS = ['webhook', 'wecom', 'dingtalk', 'sms'];
    const cloudCounts = (b: string) => CHANNELS.flatMap((channel) => ['sent', 'failed'].map((outcome) => metric(b, 'cs_cloud_notifications_total', { channel, outcome })));
    const expected = [1, 0, 1, 1, 1, 0, 1, 0];
    const reported = await eventually(async () => { const b = await cloudScrape(); return JSON.stringify(cloudCounts(b)) === JSON.stringify(expected) && b; });
    expect(reported).toContain('# TYPE cs_cloud_notifications_total counter');
    expect(cloudCounts(reported)).toEqual(expected);
  });

  it('tells of an escalation, a near deadline and an overdue case, the command centre too when the case reaches it', async () => {
    const MIN = 60_000;
    let t = Date.now();
    const { stack, webhook } = await setup((u) => ({
      units: { 'xz-drainage': { name: '香洲区排水管理所', channels: [{ type: 'webhook', url: `${u.webhook}/unit` }] } },
      commandCentre: { channels: [{ type: 'webhook', url: `${u.webhook}/command-centre`, language: 'en' }] },
    }), { now: () => t, escalation: { tickMs: 3_600_000, remindBeforeMs: 60 * MIN, ackWithinMs: 15 * MIN, stepMs: 30 * MIN } });
    const tick = async (at: number) => { t = at; await stack.cloud.escalator!.tick(); };
    // The device falls silent on the way, so the clock opens an offline case too: only this case's notifications count.
    let caseId = '';
    const mine = () => webhook.requests.filter((r) => json(r).caseId === caseId);
    const kinds = () => mine().map((r) => `${r.url} ${json(r).kind}`);

    await stack.cloud.ingest('gw-xz-jida', topics.up('gw-xz-jida', 'XZ-WL-001'), reading('XZ-WL-001', 1, t, { level_m: 0.92 }));
    await eventually(() => webhook.requests.length === 1);
    const c = json(webhook.requests[0]);
    caseId = c.caseId;
    const deadline = Date.parse(c.deadline);
    // Not accepted within 15 minutes: the unit's duty leader is called in.
    await tick(t + 16 * MIN);
    await eventually(() => mine().length === 2);
    const crew = await stack.token('crew', 'xz-drainage');
    const accepted = await fetch(`${stack.base}/api/cases/${c.caseId}/accept`, { method: 'POST', headers: { authorization: `Bearer ${crew}` } });
    expect(accepted.status).toBe(200);
    await tick(deadline - 30 * MIN);
    await eventually(() => mine().length === 3);
    // Overdue past a step: the command centre.
    await tick(deadline + 31 * MIN);
    await eventually(() => mine().length === 5);
    expect(kinds()).toEqual(['/unit dispatched', '/unit escalated', '/unit reminder', '/unit overdue', '/command-centre overdue']);
    const [escalated, reminder, overdue, centre] = mine().slice(1).map(json);
    expect(escalated).toMatchObject({ caseId: c.caseId, unit: 'xz-drainage', escalation: { level: 1, rung: 'duty-leader', reason: 'not accepted within 15 min' } });
    expect(escalated.text).toMatch(/已升级至单位值班领导：not accepted within 15 min。处置时限 /);
    expect(reminder).toMatchObject({ kind: 'reminder', event: 'case.reminder', deadline: c.deadline });
    expect(reminder.text).toContain('临近，请尽快处置');
    expect(overdue).toMatchObject({ kind: 'overdue', escalation: { level: 2, rung: 'command-centre' } });
    expect(centre.text).toMatch(/^\[CitySteward\] Case overdue\nCase C-\S+ \(香洲区排水管理所\) passed its deadline .+ and was escalated to the command centre: /);
  });
});
