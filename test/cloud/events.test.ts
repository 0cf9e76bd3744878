import { createServer, type AddressInfo, type Server } from 'node:net';
import { Aedes } from 'aedes';
import mqtt, { type MqttClient } from 'mqtt';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { topics } from '../../lib/topics.ts';
import { buildCloud, type Cloud } from '../../cloud/app.ts';
import { district, freshDatabase, profiles, reading } from './fixtures.ts';
import { openStream, type Sse } from '../helpers/sse.ts';

/** Case and alarm events on the live stream (server-sent events) and on MQTT for integrations. */

async function until<T>(fn: () => T | undefined | false, what: string): Promise<T> {
  for (let i = 0; i < 300; i++) {
    const v = fn();
    if (v) return v;
    await new Promise((r) => setTimeout(r, 10));
  }
  throw new Error(`timed out waiting for ${what}`);
}

describe('case and alarm events', () => {
  let cloud: Cloud | undefined;
  let drop: (() => Promise<void>) | undefined;
  let broker: Aedes | undefined;
  let server: Server | undefined;
  let listener: MqttClient | undefined;
  const streams: Sse[] = [];

  beforeEach(async () => {
    const fresh = await freshDatabase('sqlite');
    drop = fresh.drop;
    broker = await Aedes.createBroker();
    server = createServer(broker.handle);
    await new Promise<void>((resolve) => server!.listen(0, '127.0.0.1', resolve));
    const url = `mqtt://127.0.0.1:${(server.address() as AddressInfo).port}`;
    cloud = await buildCloud({ db: fresh.db, district, profiles, mqtt: { url, username: 'cloud', password: 'x' }, escalation: false });
    await cloud.start();
    listener = await mqtt.connectAsync(url, { protocolVersion: 4, clientId: 'integration' });
  });

  afterEach(async () => {
    for (const s of streams.splice(0)) s.close();
    await listener?.endAsync();
    await cloud?.stop();
    await new Promise<void>((resolve) => broker!.close(() => resolve()));
    await new Promise<void>((resolve) => server!.close(() => resolve()));
    await drop?.();
  });

  it('streams a case opening and its alarm to the unit\'s crew and the operator, not to another unit\'s crew', async () => {
    const base = await cloud!.app.listen({ host: '127.0.0.1', port: 0 });
    const op = await openStream(base, await cloud!.tokens.create('operator'));
    const mine = await openStream(base, await cloud!.tokens.create('crew', 'xz-drainage'));
    const other = await openStream(base, await cloud!.tokens.create('crew', 'zh-gas'));
    streams.push(op, mine, other);
    expect(op.res.statusCode).toBe(200);
    expect(op.res.headers['content-type']).toMatch(/^text\/event-stream/);
    await until(() => cloud!.events.listeners() >= 3, 'three subscribers');

    await cloud!.ingest('gw-xz-jida', topics.up('gw-xz-jida', 'XZ-WL-001'), reading('XZ-WL-001', 1, Date.now(), { level_m: 0.92 }));
    const opened = await until(() => mine.events.find((e) => e.event === 'case.opened'), 'case.opened on the crew stream');
    expect(opened.data).toMatchObject({ type: 'case.opened', device: 'XZ-WL-001', hazard: 'waterlogging', unit: 'xz-drainage', state: 'dispatched', caseId: expect.stringMatching(/^C-/) });
    await until(() => op.events.find((e) => e.event === 'alarm.raised'), 'alarm.raised on the operator stream');
    expect(other.events).toEqual([]);
  });

  it('refuses the live stream without a token', async () => {
    const base = await cloud!.app.listen({ host: '127.0.0.1', port: 0 });
    const s = await openStream(base, 'nope');
    streams.push(s);
    expect(s.res.statusCode).toBe(401);
  });

  it('publishes case and alarm events on cs/v1/events/... for integrations, and case transitions', async () => {
    const got: { topic: string; body: Record<string, unknown> }[] = [];
    listener!.on('message', (topic, payload) => got.push({ topic, body: JSON.parse(payload.toString()) }));
    await listener!.subscribeAsync('cs/v1/events/#', { qos: 1 });
    const r = await cloud!.ingest('gw-xz-jida', topics.up('gw-xz-jida', 'XZ-WL-001'), reading('XZ-WL-001', 1, Date.now(), { level_m: 0.92 }));
    const caseId = (r as { cases: { caseId: string }[] }).cases[0].caseId;
    await until(() => got.find((m) => m.topic === 'cs/v1/events/case/opened'), 'cs/v1/events/case/opened');
    await until(() => got.find((m) => m.topic === 'cs/v1/events/alarm/raised'), 'cs/v1/events/alarm/raised');
    const crew = await cloud!.tokens.create('crew', 'xz-drainage');
    await cloud!.app.inject({ method: 'POST', url: `/api/cases/${caseId}/accept`, headers: { authorization: `Bearer ${crew}` } });
    const t = await until(() => got.find((m) => m.topic === 'cs/v1/events/case/transition'), 'cs/v1/events/case/transition');
    expect(t.body).toMatchObject({ caseId, state: 'accepted', data: { action: 'accept', from: 'dispatched', to: 'accepted', role: 'crew' } });
  });

  it('lets an operator acknowledge an alarm, linked to its case', async () => {
    await cloud!.ingest('gw-xz-jida', topics.up('gw-xz-jida', 'XZ-WL-001'), reading('XZ-WL-001', 1, Date.now(), { level_m: 0.92 }));
    const op = await cloud!.tokens.create('operator');
    const h = { authorization: `Bearer ${op}` };
    const [alarm] = (await cloud!.app.inject({ url: '/api/alarms?active=true', headers: h })).json().items;
    expect(alarm).toMatchObject({ device: 'XZ-WL-001', hazard: 'waterlogging', active: true, acknowledgedAt: null, caseId: expect.stringMatching(/^C-/) });
    const acked = await cloud!.app.inject({ method: 'POST', url: `/api/alarms/${alarm.id}/ack`, headers: h });
    expect(acked.json()).toMatchObject({ id: alarm.id, acknowledgedBy: expect.stringMatching(/^token:tok_/) });
    const otherCrew = await cloud!.tokens.create('crew', 'zh-gas');
    expect((await cloud!.app.inject({ method: 'POST', url: `/api/alarms/${alarm.id}/ack`, headers: { authorization: `Bearer ${otherCrew}` } })).statusCode).toBe(404);
  });
});
