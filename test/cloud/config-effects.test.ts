import mqtt, { type MqttClient } from 'mqtt';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { topics } from '../../lib/topics.ts';
import { eventually } from '../helpers/process.ts';
import { BACKENDS, profiles, reading, type Backend } from './fixtures.ts';
import { configApi, configDistrict, GW, HOUR, MIN, ORANGE, T0, gatewayLink, startBroker, startCloud, type StartedCloud, type TestBroker } from './harness.ts';

/**
 * Configuration as data (README "Configuration as data"): the sub-settings test/cloud/config.test.ts
 * does not reach, each changed through PUT /api/config/:kind as admin and in force at once: the case
 * clock's step between rungs and reminder lead time, the warning events emergency mode reacts to, and
 * the retry period of an unacknowledged fast-mode command. Each test shows the behaviour before and after.
 */

const district = configDistrict;
/** The same orange signal for a rainstorm (暴雨), an event the default policy does not list. */
const rainstorm = (n: number) => ORANGE.replaceAll('台风', '暴雨').replace('typhoon-orange', 'rainstorm-orange').replace('TY-0917-001', `RS-0917-00${n}`);

describe.each(BACKENDS)('configuration as data takes effect on $backend', ({ backend, skip }: { backend: Backend; skip: boolean }) => {
  if (skip) console.warn(`configuration effects on ${backend}: skipped, PostgreSQL is not reachable`);
  describe.skipIf(skip)(backend, () => {
    let h: StartedCloud;
    let t = T0;
    let seq = 0;

    beforeEach(async () => {
      t = T0;
      // The case clock's timer is slow: the tests run its passes themselves at the injected time.
      h = await startCloud(backend, { district, profiles, now: () => t, escalation: { tickMs: HOUR } });
    });

    afterEach(async () => {
      await h?.stop();
    });

    const { get, putOk: put } = configApi(() => h);
    const send = async (device: string, level: number) => {
      const r = await h.cloud.ingest(GW, topics.up(GW, device), reading(device, ++seq, t, { level_m: level }));
      return r as { status: string; cases: { caseId: string }[] };
    };
    const of = (id: string, type: string) => h.events.filter((e) => e.caseId === id && e.type === type);
    const warn = async (xml: string) => {
      const r = await h.cloud.app.inject({ method: 'POST', url: '/api/warnings', headers: { authorization: `Bearer ${h.admin}`, 'content-type': 'application/cap+xml' }, payload: xml });
      expect(r.statusCode).toBe(202);
      return r.json() as { decision: { action: string; level?: string }; mode: { mode: string; level: string | null } };
    };

    it('escalation: a shorter step between rungs takes an unaccepted case to the command centre sooner', async () => {
      const id = (await send('WL-T-0001', 0.9)).cases[0].caseId;
      const { version, document } = await get('escalation');
      expect(document).toMatchObject({ ackWithinMs: 15 * MIN, stepMs: 30 * MIN });
      t = T0 + 16 * MIN;
      await h.cloud.escalator!.tick();
      expect(of(id, 'case.escalated').map((e) => e.data?.level)).toEqual([1]);
      // 26 minutes unaccepted: 11 past the first rung, short of the 30-minute step to the next.
      t = T0 + 26 * MIN;
      await h.cloud.escalator!.tick();
      expect(of(id, 'case.escalated').map((e) => e.data?.level)).toEqual([1]);
      await put('escalation', { ...document, stepMs: 10 * MIN }, version);
      await h.cloud.escalator!.tick();
      expect(of(id, 'case.escalated')).toMatchObject([{ data: { level: 1 } }, { data: { level: 2, rung: 'command-centre' } }]);
    });

    it('escalation: a longer reminder lead time reminds the unit that much before the deadline', async () => {
      const id = (await send('WL-T-0002', 0.75)).cases[0].caseId; // routine: due in one working day, T0 + 24 h
      const { version, document } = await get('escalation');
      expect(document.remindBeforeMs).toBe(HOUR);
      t = T0 + 21 * HOUR;
      await h.cloud.escalator!.tick();
      expect(of(id, 'case.reminder')).toEqual([]); // three hours before: the one-hour lead is not reached
      await put('escalation', { ...document, remindBeforeMs: 3 * HOUR }, version);
      t = T0 + 21 * HOUR - 1000;
      await h.cloud.escalator!.tick();
      expect(of(id, 'case.reminder')).toEqual([]);
      t = T0 + 21 * HOUR;
      await h.cloud.escalator!.tick();
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
  let broker: TestBroker;
  let h: StartedCloud;
  let gateway: MqttClient;
  let t = T0;

  beforeEach(async () => {
    t = T0;
    broker = await startBroker();
    h = await startCloud('sqlite', {
      district, profiles, now: () => t, escalation: false,
      mqtt: { url: broker.url, username: 'cloud', password: 'unused-by-this-broker' },
    });
    gateway = await mqtt.connectAsync(broker.url, { protocolVersion: 4, clientId: GW, reconnectPeriod: 0 });
  });

  afterEach(async () => {
    await gateway?.endAsync(true);
    await h?.stop();
    await broker?.close();
  });

  const { get, putOk } = configApi(() => h);
  const pause = (ms: number) => new Promise((r) => setTimeout(r, ms));

  it('a shorter retry period resends the command to a gateway that does not acknowledge at the new interval', async () => {
    // A gateway that is online and hears its commands but never acknowledges them.
    const heard: { id: string; mode: string; at: number }[] = [];
    gateway.on('message', (_topic, payload) => { const c = JSON.parse(payload.toString()); heard.push({ id: c.id, mode: c.mode, at: t }); });
    await gateway.subscribeAsync(topics.cmd(GW), { qos: 1 });
    await gateway.publishAsync(topics.state(GW), JSON.stringify({ online: true, bdSeq: 1, ts: new Date(T0).toISOString() }), { qos: 1, retain: true });
    const { cloud, admin } = h;
    const cfg = await get('emergency', admin);
    expect(cfg.document.retryMs).toBe(3000);
    // The cloud knows the gateway is online before the switch (else its coming online would send again).
    await gatewayLink(cloud, admin, GW);

    expect((await cloud.emergency!.receiveWarning(ORANGE, 'test')).state.mode).toBe('emergency');
    await eventually(() => heard.length === 1, 10_000, 20);
    expect(cloud.emergency!.fanout.status().missing.find((m) => m.gateway === GW)).toMatchObject({ online: true, attempts: 1 });
    expect(heard[0].mode).toBe('fast');
    // Half a second unacknowledged, past one real retry pass (every 1.5 s for 3 s): not retried yet.
    t += 500;
    await pause(1700);
    expect(heard).toHaveLength(1);

    await putOk('emergency', { ...cfg.document, retryMs: 500 }, cfg.version);
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
