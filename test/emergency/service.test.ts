import { createServer, type AddressInfo, type Server } from 'node:net';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Aedes } from 'aedes';
import mqtt, { type MqttClient } from 'mqtt';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { openDatabase, type Database } from '../../cloud/db/database.ts';
import { buildEmergency, type Emergency } from '../../cloud/emergency/service.ts';
import { WarningPolicy } from '../../cloud/emergency/policy.ts';
import { check } from '../../lib/schema.ts';
import { silentLogger } from '../../lib/log.ts';
import { parseTopic, topics } from '../../lib/topics.ts';
import { eventually } from '../helpers/process.ts';

const policy = (() => { const r = check(WarningPolicy, {}); if (!r.ok) throw new Error('policy'); return r.value; })();
const fixture = (name: string) => readFileSync(new URL(`../fixtures/cap/${name}.xml`, import.meta.url), 'utf8');

/** A light gateway: acknowledges every command on its own ack topic and records its mode. */
async function lightGateway(url: string, id: string): Promise<{ client: MqttClient; modes: string[]; polls: number[] }> {
  const client = await mqtt.connectAsync(url, { clientId: id, protocolVersion: 4, reconnectPeriod: 0 });
  const modes: string[] = [];
  const polls: number[] = [];
  client.on('message', (_t, payload) => {
    const cmd = JSON.parse(payload.toString());
    modes.push(cmd.mode);
    if (cmd.mode === 'fast') polls.push(cmd.pollMs);
    void client.publishAsync(topics.cmdAck(id), JSON.stringify({ id: cmd.id, outcome: 'ok', ts: new Date().toISOString() }), { qos: 1 });
  });
  await client.subscribeAsync(topics.cmd(id), { qos: 1 });
  await client.publishAsync(topics.state(id), JSON.stringify({ online: true, bdSeq: 1, ts: new Date().toISOString() }), { qos: 1, retain: true });
  return { client, modes, polls };
}

describe('emergency mode', () => {
  let dir: string;
  let broker: Aedes;
  let server: Server;
  let url: string;
  let db: Database;
  let cloudClient: MqttClient;
  let emergency: Emergency | undefined;
  const clients: MqttClient[] = [];
  const online = new Set<string>();
  const gateways = ['gw-a', 'gw-b', 'gw-c'];

  async function build(): Promise<Emergency> {
    const e = buildEmergency({
      db: db.db, write: db.write, policy, gateways: () => gateways, isOnline: (g) => online.has(g),
      publish: async (topic, payload) => { await cloudClient.publishAsync(topic, payload, { qos: 1 }); },
      now: Date.now, logger: silentLogger(), fast: { pollMs: 250 }, retryMs: 200, syncMs: 50,
    });
    await e.start();
    return e;
  }

  beforeEach(async () => {
    dir = mkdtempSync(join(tmpdir(), 'cs-emg-'));
    broker = await Aedes.createBroker();
    server = createServer(broker.handle);
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    url = `mqtt://127.0.0.1:${(server.address() as AddressInfo).port}`;
    db = openDatabase({ kind: 'sqlite', file: join(dir, 'cs.db') });
    await db.migrate();
    online.clear();
    cloudClient = await mqtt.connectAsync(url, { clientId: 'cloud', protocolVersion: 4 });
    cloudClient.on('message', (topic, payload) => {
      const t = parseTopic(topic);
      if (!t) return;
      const body = JSON.parse(payload.toString());
      if (t.kind === 'cmd-ack') emergency?.fanout.onAck(t.gateway, body);
      if (t.kind === 'state') {
        if (body.online) { online.add(t.gateway); emergency?.fanout.onOnline(t.gateway); } else online.delete(t.gateway);
      }
    });
    await cloudClient.subscribeAsync([topics.allCmdAck, topics.allState], { qos: 1 });
  });

  afterEach(async () => {
    await emergency?.stop();
    emergency = undefined;
    for (const c of clients.splice(0)) await c.endAsync(true);
    await cloudClient.endAsync(true);
    await db.close();
    await new Promise<void>((r) => broker.close(() => r()));
    await new Promise<void>((r) => server.close(() => r()));
    rmSync(dir, { recursive: true, force: true });
  });

  it('sends fast mode to every connected gateway, tracks acknowledgements, reaches a late gateway when it connects, and restores normal mode on exit', async () => {
    const a = await lightGateway(url, 'gw-a');
    const b = await lightGateway(url, 'gw-b');
    clients.push(a.client, b.client);
    await eventually(() => online.has('gw-a') && online.has('gw-b'));
    emergency = await build();

    const state = await emergency.switchMode({ mode: 'emergency', level: 'II', actor: 'commander-li', role: 'commander', reason: 'typhoon drill' });
    expect(state).toMatchObject({ mode: 'emergency', level: 'II', source: 'manual', actor: 'commander-li' });
    await eventually(() => emergency!.status().gateways.acknowledged.length === 2);
    expect(emergency.status().gateways.missing).toEqual([expect.objectContaining({ gateway: 'gw-c', online: false })]);
    expect(a.modes).toEqual(['fast']);

    // gw-c was offline; its birth brings the command, and it acknowledges.
    const c = await lightGateway(url, 'gw-c');
    clients.push(c.client);
    await emergency.fanout.settled();
    expect(c.modes).toEqual(['fast']);
    expect(emergency.status().gateways.missing).toEqual([]);
    expect(emergency.status().gateways.lastAckAfterMs).toBeGreaterThanOrEqual(0);

    await emergency.switchMode({ mode: 'normal', actor: 'commander-li', role: 'commander', reason: 'drill over' });
    await emergency.fanout.settled();
    expect([a.modes, b.modes, c.modes]).toEqual([['fast', 'normal'], ['fast', 'normal'], ['fast', 'normal']]);
    const log = await emergency.store.log();
    expect(log.map((e) => e.action)).toEqual(['leave', 'enter']);
    expect(log[1]).toMatchObject({ actor: 'commander-li', role: 'commander', reason: 'typhoon drill', level: 'II' });
  });

  it('sends a fast poll interval changed during an emergency to the gateways already in fast mode (they kept the old one before)', async () => {
    const a = await lightGateway(url, 'gw-a');
    clients.push(a.client);
    await eventually(() => online.has('gw-a'));
    emergency = await build();
    await emergency.switchMode({ mode: 'emergency', level: 'II', actor: 'cmd', role: 'commander', reason: 'typhoon' });
    await eventually(() => a.polls.length === 1);
    emergency.configure({ ...emergency.settings(), fast: { pollMs: 500, heartbeatMs: 2_000 } });
    await eventually(() => a.polls.length === 2);
    expect(a.polls).toEqual([250, 500]);
    await eventually(() => emergency!.status().gateways.acknowledged.length === 1);
    expect(emergency.status().gateways.command).toMatchObject({ mode: 'fast', pollMs: 500, heartbeatMs: 2_000 });
    // In normal mode a changed interval waits for the next switch: nothing is sent.
    await emergency.switchMode({ mode: 'normal', actor: 'cmd', role: 'commander', reason: 'over' });
    await eventually(() => a.modes.length === 3);
    emergency.configure({ ...emergency.settings(), fast: { pollMs: 1_000 } });
    await new Promise((r) => setTimeout(r, 300));
    expect(a.modes).toEqual(['fast', 'fast', 'normal']);
  });

  it('sends no fast interval from a worker whose view still shows an emergency another worker has just ended (it would put the gateways back in fast mode)', async () => {
    const a = await lightGateway(url, 'gw-a');
    clients.push(a.client);
    await eventually(() => online.has('gw-a'));
    emergency = await build();
    const other = await build();
    try {
      await emergency.switchMode({ mode: 'emergency', level: 'II', actor: 'cmd', role: 'commander', reason: 'typhoon' });
      await eventually(() => other.current()?.mode === 'emergency' && a.modes.length === 1);
      await emergency.switchMode({ mode: 'normal', actor: 'cmd', role: 'commander', reason: 'over' });
      expect(other.current()?.mode).toBe('emergency'); // its poll (50 ms) has not seen the switch yet
      other.configure({ ...other.settings(), fast: { pollMs: 500 } }, 7);
      await eventually(() => a.modes.length === 2);
      await new Promise((r) => setTimeout(r, 300));
      expect(a.modes).toEqual(['fast', 'normal']);
    } finally {
      await other.stop();
    }
  });

  it('keeps emergency mode across a cloud restart and tells the gateways again', async () => {
    const a = await lightGateway(url, 'gw-a');
    clients.push(a.client);
    await eventually(() => online.has('gw-a'));
    emergency = await build();
    await emergency.switchMode({ mode: 'emergency', level: 'I', actor: 'cmd', role: 'commander', reason: 'red signal' });
    await emergency.stop();

    emergency = await build();
    expect(emergency.state()).toMatchObject({ mode: 'emergency', level: 'I', reason: 'red signal' });
    await eventually(() => a.modes.length === 2);
    expect(a.modes).toEqual(['fast', 'fast']);
  });

  it('lets a second cloud worker on the same database follow a switch made by the first', async () => {
    emergency = await build();
    const other = await build();
    try {
      expect(other.state().mode).toBe('normal');
      await emergency.switchMode({ mode: 'emergency', level: 'II', actor: 'cmd', role: 'commander', reason: 'orange signal' });
      await eventually(() => other.current()?.mode === 'emergency');
      expect(other.state()).toMatchObject({ level: 'II', epoch: 1 });
      // A warning on the other worker sees the switch: it raises the manual level, not a stale normal state.
      const w = await other.receiveWarning(fixture('update-red'), 'feed');
      expect(w.state).toMatchObject({ level: 'I', source: 'manual', epoch: 2 });
    } finally {
      await other.stop();
    }
  });

  it('enters on a CAP warning, ignores its repeat, follows an Update and leaves on the Cancel', async () => {
    emergency = await build();
    const first = await emergency.receiveWarning(fixture('orange-typhoon'), 'feed');
    expect(first).toMatchObject({ duplicate: false, decision: { action: 'enter', level: 'II' }, state: { mode: 'emergency', level: 'II', source: 'warning' } });
    const again = await emergency.receiveWarning(fixture('orange-typhoon'), 'feed');
    expect(again.duplicate).toBe(true);
    const upd = await emergency.receiveWarning(fixture('update-red'), 'feed');
    expect(upd.state).toMatchObject({ level: 'I', alerts: ['GD-ZH-2026-TY-0917-002'] });
    const test = await emergency.receiveWarning(fixture('test-status'), 'feed');
    expect(test.decision.action).toBe('ignore');
    const cancel = await emergency.receiveWarning(fixture('cancel'), 'feed');
    expect(cancel.state).toMatchObject({ mode: 'normal', alerts: [] });
    expect((await emergency.store.log()).map((e) => e.action)).toEqual(['leave', 'relevel', 'enter']);
  });

  it('never lets a warning lower a commander\'s manual level, nor its cancel end the manual mode', async () => {
    emergency = await build();
    await emergency.switchMode({ mode: 'emergency', level: 'I', actor: 'cmd', role: 'commander', reason: 'manual' });
    const w = await emergency.receiveWarning(fixture('orange-typhoon'), 'feed');
    expect(w.state).toMatchObject({ level: 'I', source: 'manual' });
    const c = await emergency.receiveWarning(fixture('cancel'), 'feed');
    expect(c.state).toMatchObject({ mode: 'emergency', level: 'I' });
  });
});
