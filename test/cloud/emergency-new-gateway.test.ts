import mqtt, { type MqttClient } from 'mqtt';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { topics } from '../../lib/topics.ts';
import { eventually } from '../helpers/process.ts';
import { profiles } from './fixtures.ts';
import { configDistrict, gatewayLink, ORANGE, startBroker, startCloud, T0, type StartedCloud, type TestBroker } from './harness.ts';

/**
 * The fast-mode command reaches gateways the registry gains while it is out (README "Device registry":
 * the district is the registry's live view): the command's gateways were the list read when it began,
 * so a gateway added during a typhoon stayed in normal mode.
 */

describe('emergency mode and a gateway added through the registry', () => {
  let broker: TestBroker;
  let h: StartedCloud;
  const edges: MqttClient[] = [];

  beforeEach(async () => {
    broker = await startBroker();
    h = await startCloud('sqlite', {
      district: configDistrict, profiles, now: () => T0, escalation: false,
      mqtt: { url: broker.url, username: 'cloud', password: 'unused-by-this-broker' },
    });
  });

  afterEach(async () => {
    for (const e of edges.splice(0)) await e.endAsync(true);
    await h?.stop();
    await broker?.close();
  });

  /** An edge that hears its commands and never acknowledges them. */
  const edge = async (gw: string) => {
    const c = await mqtt.connectAsync(broker.url, { protocolVersion: 4, clientId: gw, reconnectPeriod: 0 });
    edges.push(c);
    const heard: { id: string; mode: string }[] = [];
    c.on('message', (_topic, payload) => heard.push(JSON.parse(payload.toString())));
    await c.subscribeAsync(topics.cmd(gw), { qos: 1 });
    await c.publishAsync(topics.state(gw), JSON.stringify({ online: true, bdSeq: 1, ts: new Date(T0).toISOString() }), { qos: 1, retain: true });
    return heard;
  };
  const addGateway = async (id: string) => {
    const r = await h.cloud.app.inject({ method: 'POST', url: '/api/registry/gateways', headers: { authorization: `Bearer ${h.admin}` }, payload: { id, name: `cabinet ${id}` } });
    expect(r.statusCode, r.body).toBe(201);
  };

  it('is sent the fast command when it comes online, and when it was online before it was added', async () => {
    const { cloud } = h;
    const switched = await cloud.emergency!.receiveWarning(ORANGE, 'test');
    expect(switched.state.mode).toBe('emergency');
    const before = cloud.emergency!.fanout.status();
    expect(before.missing.map((m) => m.gateway)).not.toContain('gw-new-1');

    // Added, then its edge starts.
    await addGateway('gw-new-1');
    const first = await edge('gw-new-1');
    await eventually(() => first.length > 0, 10_000, 20);
    expect(first[0]).toMatchObject({ id: before.id, mode: 'fast' });

    // Its edge runs first (unknown to the registry, so not sent to), then it is added.
    const second = await edge('gw-new-2');
    // The cloud reads the births in order: once it has gw-new-1 offline, it has had gw-new-2's birth.
    await edges[0].publishAsync(topics.state('gw-new-1'), JSON.stringify({ online: false, bdSeq: 1, ts: new Date(T0).toISOString() }), { qos: 1, retain: true });
    await gatewayLink(cloud, h.admin, 'gw-new-1', false);
    await addGateway('gw-new-2');
    await eventually(() => second.length > 0, 10_000, 20);
    expect(second[0]).toMatchObject({ id: before.id, mode: 'fast' });
    expect(cloud.emergency!.fanout.status()).toMatchObject({ id: before.id, total: before.total + 2 });
  });
});
