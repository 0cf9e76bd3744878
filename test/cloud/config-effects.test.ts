import { readFileSync } from 'node:fs';
import { createServer, type AddressInfo, type Server } from 'node:net';
import { Aedes } from 'aedes';
import mqtt, { type MqttClient } from 'mqtt';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { topics } from '../../lib/topics.ts';
import { buildCloud, type Cloud } from '../../cloud/app.ts';
import type { CsEvent } from '../../cloud/events.ts';
import { eventually } from '../helpers/process.ts';
import { BACKENDS, freshDatabase, profiles, reading, syntheticDistrict, type Backend } from './fixtures.ts';

/**
 * Configuration as data (README "Configuration as data"): the sub-settings test/cloud/config.test.ts
 * does not reach, each changed through PUT /api/config/:kind as admin and in force at once: the case
 * clock's step between rungs and reminder lead time, the warning events emergency mode reacts to, and
 * the retry period of an unacknowledged fast-mode command. Each test shows the behaviour before and after.
 */

const MIN = 60_000;
const HOUR = 60 * MIN;
// Wednesday 2026-11-25, 10:00 in Zhuhai.
const T0 = Date.parse('2026-11-25T02:00:00Z');
const district = syntheticDistrict(8, 1);
const GW = 'gw-t-0';
const ORANGE = readFileSync(new URL('../fixtures/cap/orange-typhoon.xml', import.meta.url), 'utf8');
/** The same orange signal for a rainstorm (暴雨), an event the default policy does not list. */
const rainstorm = (n: number) => ORANGE.replaceAll('台风', '暴雨').replace('typhoon-orange', 'rainstorm-orange').replace('TY-0917-001', `RS-0917-00${n}`);

describe.each(BACKENDS)('configuration as data takes effect on $backend', ({ backend, skip }: { backend: Backend; skip: boolean }) => {
  if (skip) console.warn(`configuration effects on ${backend}: skipped, PostgreSQL is not reachable`);
  describe.skipIf(skip)(backend, () => {
    let cloud: Cloud;
    let drop: () => Promise<void>;
    let t = T0;
    let seq = 0;
    let admin: string;
    let operator: string;
    let events: CsEvent[];

    beforeEach(async () => {
      t = T0;
      const fresh = await freshDatabase(backend);
      drop = fresh.drop;
      // The case clock's timer is slow: the tests run its passes themselves at the injected time.
      cloud = await buildCloud({ db: fresh.db, district, profiles, now: () => t, escalation: { tickMs: HOUR } });
      await cloud.start();
      admin = await cloud.tokens.create('admin');
      operator = await cloud.tokens.create('operator');
      events = [];
      cloud.events.subscribe((e) => events.push(e));
    });

    afterEach(async () => {
      await cloud?.stop();
      await drop?.();
    });

    const get = async (kind: string) => {
      const r = await cloud.app.inject({ url: `/api/config/${kind}`, headers: { authorization: `Bearer ${operator}` } });
      expect(r.statusCode).toBe(200);
      return r.json() as { version: number; document: any };
    };
    const put = async (kind: string, document: unknown, baseVersion: number) => {
      const r = await cloud.app.inject({
        method: 'PUT', url: `/api/config/${kind}`, headers: { authorization: `Bearer ${admin}` }, payload: { document, baseVersion },
      });
      expect(r.statusCode).toBe(200);
    };
    const send = async (device: string, level: number) => {
      const r = await cloud.ingest(GW, topics.up(GW, device), reading(device, ++seq, t, { level_m: level }));
      return r as { status: string; cases: { caseId: string }[] };
    };
    const of = (id: string, type: string) => events.filter((e) => e.caseId === id && e.type === type);
    const warn = async (xml: string) => {
      const r = await cloud.app.inject({ method: 'POST', url: '/api/warnings', headers: { authorization: `Bearer ${admin}`, 'content-type': 'application/cap+xml' }, payload: xml });
      expect(r.statusCode).toBe(202);
      return r.json() as { decision: { action: string; level?: string }; mode: { mode: string; level: string | null } };
    };

    it('escalation: a shorter step between rungs takes an unaccepted case to the command centre sooner', async () => {
      const id = (await send('WL-T-0001', 0.9)).cases[0].caseId;
      const { version, document } = await get('escalation');
      expect(document).toMatchObject({ ackWithinMs: 15 * MIN, stepMs: 30 * MIN });
      t = T0 + 16 * MIN;
      await cloud.escalator!.tick();
      expect(of(id, 'case.escalated').map((e) => e.data?.level)).toEqual([1]);
      // 26 minutes unaccepted: 11 past the first rung, short of the 30-minute step to the next.
      t = T0 + 26 * MIN;
      await cloud.escalator!.tick();
      expect(of(id, 'case.escalated').map((e) => e.data?.level)).toEqual([1]);
      await put('escalation', { ...document, stepMs: 10 * MIN }, version);
      await cloud.escalator!.tick();
      expect(of(id, 'case.escalated')).toMatchObject([{ data: { level: 1 } }, { data: { level: 2, rung: 'command-centre' } }]);
    });

    it('escalation: a longer reminder lead time reminds the unit that much before the deadline', async () => {
      const id = (await send('WL-T-0002', 0.75)).cases[0].caseId; // routine: due in one working day, T0 + 24 h
      const { version, document } = await get('escalation');
      expect(document.remindBeforeMs).toBe(HOUR);
      t = T0 + 21 * HOUR;
      await cloud.escalator!.tick();
      expect(of(id, 'case.reminder')).toEqual([]); // three hours before: the one-hour lead is not reached
      await put('escalation', { ...document, remindBeforeMs: 3 * HOUR }, version);
      t = T0 + 21 * HOUR - 1000;
      await cloud.escalator!.tick();
      expect(of(id, 'case.reminder')).toEqual([]);
      t = T0 + 21 * HOUR;
      await cloud.escalator!.tick();
      expect(of(id, 'case.reminder')).toMatchObject([{ at: new Date(T0 + 21 * HOUR).toISOString(), data: { deadline: new Date(T0 + 24 * HOUR).toISOString() } }]);
    });

    it('emergency: a warning for a newly listed event switches the mode; one for an event taken off the list does not', async () => {
      const before = await warn(rainstorm(1));
      expect(before.decision.action).toBe('ignore');
      expect(before.mode.mode).toBe('normal');
      const { version, document } = await get('emergency');
      expect(document.policy.events).toContain('台风');
      await put('emergency', { ...document, policy: { ...document.policy, events: ['暴雨', 'rainstorm'] } }, version);
      const typhoon = await warn(ORANGE);
      expect(typhoon.decision.action).toBe('ignore');
      expect(typhoon.mode.mode).toBe('normal');
      const entered = await warn(rainstorm(2));
      expect(entered.decision).toMatchObject({ action: 'enter', level: 'II' });
      expect(entered.mode).toMatchObject({ mode: 'emergency', level: 'II' });
    });
  });
});

describe('configuration as data: the retry period of the fast-mode command', () => {
  let broker: Aedes;
  let server: Server;
  let cloud: Cloud;
  let drop: () => Promise<void>;
  let gateway: MqttClient;
  let t = T0;

  beforeEach(async () => {
    t = T0;
    broker = await Aedes.createBroker();
    server = createServer(broker.handle);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const url = `mqtt://127.0.0.1:${(server.address() as AddressInfo).port}`;
    const fresh = await freshDatabase('sqlite');
    drop = fresh.drop;
    cloud = await buildCloud({
      db: fresh.db, district, profiles, now: () => t, escalation: false,
      mqtt: { url, username: 'cloud', password: 'unused-by-this-broker' },
    });
    await cloud.start();
    gateway = await mqtt.connectAsync(url, { protocolVersion: 4, clientId: GW, reconnectPeriod: 0 });
  });

  afterEach(async () => {
    await gateway?.endAsync(true);
    await cloud?.stop();
    await new Promise<void>((resolve) => broker.close(() => resolve()));
    await new Promise<void>((resolve) => server.close(() => resolve()));
    await drop?.();
  });

  const pause = (ms: number) => new Promise((r) => setTimeout(r, ms));

  it('a shorter retry period resends the command to a gateway that does not acknowledge at the new interval', async () => {
    // A gateway that is online and hears its commands but never acknowledges them.
    const heard: { id: string; mode: string; at: number }[] = [];
    gateway.on('message', (_topic, payload) => { const c = JSON.parse(payload.toString()); heard.push({ id: c.id, mode: c.mode, at: t }); });
    await gateway.subscribeAsync(topics.cmd(GW), { qos: 1 });
    await gateway.publishAsync(topics.state(GW), JSON.stringify({ online: true, bdSeq: 1, ts: new Date(T0).toISOString() }), { qos: 1, retain: true });
    const admin = await cloud.tokens.create('admin');
    const cfg = (await cloud.app.inject({ url: '/api/config/emergency', headers: { authorization: `Bearer ${admin}` } })).json() as { version: number; document: any };
    expect(cfg.document.retryMs).toBe(3000);
    // The cloud knows the gateway is online before the switch (else its coming online would send again).
    await eventually(async () => ((await cloud.app.inject({ url: '/api/gateways', headers: { authorization: `Bearer ${admin}` } })).json() as { id: string; online: boolean }[]).find((g) => g.id === GW)?.online, 10_000, 50);

    expect((await cloud.emergency!.receiveWarning(ORANGE, 'test')).state.mode).toBe('emergency');
    await eventually(() => heard.length === 1, 10_000, 20);
    expect(cloud.emergency!.fanout.status().missing.find((m) => m.gateway === GW)).toMatchObject({ online: true, attempts: 1 });
    expect(heard[0].mode).toBe('fast');
    // Half a second unacknowledged, past one real retry pass (every 1.5 s for 3 s): not retried yet.
    t += 500;
    await pause(1700);
    expect(heard).toHaveLength(1);

    const r = await cloud.app.inject({ method: 'PUT', url: '/api/config/emergency', headers: { authorization: `Bearer ${admin}` }, payload: { document: { ...cfg.document, retryMs: 500 }, baseVersion: cfg.version } });
    expect(r.statusCode).toBe(200);
    await eventually(() => heard.length === 2, 5000, 20);
    expect(heard[1]).toMatchObject({ id: heard[0].id, mode: 'fast', at: T0 + 500 });
    // The next retry comes 500 ms after this one, not before.
    t += 499;
    await pause(600);
    expect(heard).toHaveLength(2);
    t += 1;
    await eventually(() => heard.length === 3, 5000, 20);
    expect(heard[2]).toMatchObject({ id: heard[0].id, at: T0 + 1000 });
    expect(cloud.emergency!.fanout.status().missing.find((m) => m.gateway === GW)).toMatchObject({ attempts: 3 });
  });
});
