import { createRequire } from 'node:module';
import { afterEach, describe, expect, it } from 'vitest';
import { shippedFlow, startStack, withEnv, type Stack } from './flow-stack.ts';

/**
 * The 12345 hotline bridge (flows/flows/hotline-bridge.json) end to end: a hotline work order posted to
 * the flow's HTTP endpoint becomes a case with source `hotline` in the cloud, through citysteward-case
 * and an integrator token; a resent order gets the same case; a bad secret and a consultation none.
 */

const require = createRequire(import.meta.url);
const citysteward = ['server', 'case'].map((n) => require(`../../flows/node-red-contrib-citysteward/${n}.js`) as (RED: unknown) => void);

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

const ORDER = {
  orderNo: 'ZH12345-20261130-000123',
  receivedAt: '2026-11-30T09:12:00+08:00',
  channel: 'phone',
  type: '投诉',
  caller: { name: '张先生', phone: '13812345678' },
  category: 'E0102',
  title: '凤凰北路暴露垃圾',
  content: '凤凰北路与海滨路交叉口西侧人行道上堆放生活垃圾两天无人清运，气味很大。',
  address: '凤凰北路与海滨路交叉口, 香洲区, 珠海',
  location: { lat: 22.2921, lon: 113.5508 },
  district: '440402',
};

describe('the 12345 hotline bridge flow', () => {
  it('registers a hotline work order as a case, once, and answers its id, unit and deadline', async () => {
    const stack: Stack = await startStack();
    cleanups.push(() => stack.close());
    const token = await stack.token('integrator');
    const flow = withEnv(shippedFlow('hotline-bridge'), { HOTLINE_SECRET: 'hotline-secret' })
      .map((n) => (n.type === 'citysteward-server' ? { ...n, url: stack.base } : n));
    const red = await stack.load(flow, { 'cs-hotline-server': { token } }, citysteward);
    const post = (body: unknown, secret = 'hotline-secret') => fetch(`${red.url}/citysteward/hotline`, {
      method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${secret}` }, body: JSON.stringify(body),
    });

    const r = await post(ORDER);
    const answer = (await r.json()) as { caseId: string; unit: string; deadline: string; orderNo: string };
    expect(r.status, JSON.stringify(answer)).toBe(201);
    expect(answer).toMatchObject({ orderNo: ORDER.orderNo, caseId: expect.stringMatching(/^C-/), unit: 'xz-municipal', state: 'dispatched', deadline: expect.any(String), duplicate: false });

    const c = (await (await fetch(`${stack.base}/api/cases/${answer.caseId}`, { headers: { authorization: `Bearer ${await stack.token('operator')}` } })).json()) as Record<string, any>;
    expect(c).toMatchObject({ id: answer.caseId, source: 'hotline', category: 'E0102', unit: answer.unit, deadline: answer.deadline, device: '' });
    expect(c.description).toContain(ORDER.content);
    expect(c.description).toContain('138****5678');
    expect(c.description).not.toContain('13812345678');

    // A resent order: the same case, nothing registered again.
    const again = await post(ORDER);
    expect(again.status).toBe(200);
    expect(await again.json()).toMatchObject({ caseId: answer.caseId, duplicate: true });
    const list = (await (await fetch(`${stack.base}/api/cases?source=hotline`, { headers: { authorization: `Bearer ${await stack.token('operator')}` } })).json()) as { items: unknown[] };
    expect(list.items).toHaveLength(1);

    // The cloud refuses a category not in its catalogue: the hotline system hears why.
    const refused = await post({ ...ORDER, orderNo: 'ZH12345-3', category: 'E9999' });
    expect(refused.status).toBe(422);
    expect(await refused.json()).toMatchObject({ orderNo: 'ZH12345-3', cloud: { code: 'CS_CLOUD_CATEGORY_UNKNOWN' } });
    expect((await post(ORDER, 'wrong')).status).toBe(401);
    expect((await post({ orderNo: 'x' })).status).toBe(400);
    expect(await (await post({ ...ORDER, orderNo: 'ZH12345-2', type: '咨询' })).json()).toMatchObject({ caseId: null });
  });
});
