import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect } from 'mqtt';
import { afterEach, describe, expect, it } from 'vitest';
import { EdgeAlarm, type CommandAck } from '../../lib/messages.ts';
import { check } from '../../lib/schema.ts';
import { topics } from '../../lib/topics.ts';
import { ConfigError } from '../../lib/config.ts';
import { loadProfiles } from '../../devices/profile.ts';
import { defaultRuleSet } from '../../devices/rules.ts';
import { buildSimulator } from '../../devices/simulator.ts';
import { buildEdge } from '../../edge/edge.ts';
import { createAlarmRules } from '../../edge/alarms.ts';
import { loadEdgeConfig, validateEdgeConfig, type EdgeConfigInput } from '../../edge/config.ts';
import { recordingBroker, until } from './helpers.ts';

/** The edge's local alarms judge by the shared rule set (devices/rules.ts), emergency limits included. */

const profiles = loadProfiles();
const GW = 'gw-alarm';
const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'cs-alarm-'));
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

async function setup(extra: Partial<EdgeConfigInput> = {}) {
  const b = await recordingBroker();
  cleanups.push(() => b.stop());
  const sim = buildSimulator({ port: 0, devices: [
    { id: 'WL-1', profile: profiles.get('water-level')!, unitId: 1 },
    { id: 'WL-2', profile: profiles.get('water-level')!, unitId: 2 },
  ] });
  await sim.start();
  cleanups.push(() => sim.stop());
  for (const d of ['WL-1', 'WL-2']) sim.set(d, 'level_m', 0.8);
  const edge = buildEdge({
    config: {
      gateway: GW, mqtt: { url: b.url, username: GW, password: 'pw' }, pollMs: 100, healthMs: 0,
      alarms: { enabled: true, debounceMs: 0 },
      buses: [{ id: 'bus-a', host: '127.0.0.1', port: sim.port, timeoutMs: 500 }],
      devices: [{ id: 'WL-1', profile: 'water-level', bus: 'bus-a', unitId: 1 }, { id: 'WL-2', profile: 'water-level', bus: 'bus-a', unitId: 2 }],
      ...extra,
    },
    profiles, dataDir: tempDir(), reconnectMs: 100,
  });
  cleanups.push(() => edge.stop());
  const alarms = (device: string): EdgeAlarm[] => b.messages.filter((m) => m.topic === topics.alarm(GW, device)).map((m) => JSON.parse(m.payload));
  const readings = (device: string) => b.deliveries.filter((d) => d.reading.device === device);
  return { b, sim, edge, alarms, readings };
}

describe('edge alarms from the shared rule set', () => {
  it('an edge in fast (emergency) mode raises a water level at the rule set\'s emergency limit, as the cloud does in emergency mode', async () => {
    const t = await setup();
    await t.edge.start();
    // 0.8 m: tier 1 only (routine, left to the cloud) in normal mode; no edge alarm.
    await until(() => t.readings('WL-1').length >= 3);
    expect(t.alarms('WL-1')).toEqual([]);

    const cloud = connect(t.b.url, { protocolVersion: 4, clientId: 'cloud-1' });
    cleanups.push(() => cloud.endAsync(true));
    await new Promise<void>((resolve) => cloud.once('connect', () => resolve()));
    const acks: CommandAck[] = [];
    cloud.on('message', (_topic, p) => acks.push(JSON.parse(p.toString())));
    await cloud.subscribeAsync(topics.cmdAck(GW), { qos: 1 });
    await cloud.publishAsync(topics.cmd(GW), JSON.stringify({ id: 'mode-1', type: 'set-mode', mode: 'fast', pollMs: 100 }), { qos: 1 });
    await until(() => acks.some((a) => a.id === 'mode-1'));

    // Emergency tier 2 is 0.75 m (devices/rules.ts): 0.8 m is an urgent waterlogging now.
    await until(() => t.alarms('WL-1').length >= 1);
    const [a] = t.alarms('WL-1');
    expect(check(EdgeAlarm, a).ok).toBe(true);
    expect(a).toMatchObject({ device: 'WL-1', rule: 'level-tier2', hazard: 'waterlogging', severity: 'major', value: 0.8, limit: 0.75, active: true, historical: false });
  });

  it('an edge judges by the rule set in its config: a device override lowers a limit, a disabled rule raises nothing', async () => {
    const dir = tempDir();
    const rules = defaultRuleSet(profiles);
    rules.devices = { 'WL-1': [{ id: 'level-tier2', value: 0.5 }], 'WL-2': [{ id: 'level-tier2', value: 0.5 }, { id: 'level-tier3', disabled: true }] };
    const file = join(dir, 'rules.json');
    writeFileSync(file, JSON.stringify(rules));
    const t = await setup({ rules: file });
    t.sim.set('WL-2', 'level_m', 2);
    await t.edge.start();
    await until(() => t.alarms('WL-1').length >= 1 && t.alarms('WL-2').length >= 1);
    expect(t.alarms('WL-1')).toMatchObject([{ rule: 'level-tier2', limit: 0.5, value: 0.8 }]);
    // Tier 3 (0.95 m, critical) is off at WL-2: its 2 m is the (lowered) tier 2.
    await until(() => t.readings('WL-2').length >= 3);
    expect(t.alarms('WL-2').map((a) => a.rule)).toEqual(['level-tier2']);
  });

  it('an urgent rule clears at the edge only once back past its hysteresis', () => {
    const r = createAlarmRules({ rules: defaultRuleSet(profiles), debounceMs: 0 });
    expect(r.evaluate('WL-1', 'water-level', { level_m: 0.9 }, 0, false)).toMatchObject([{ rule: 'level-tier2', active: true }]);
    // 0.84 m is under 0.85 m but within the 5 cm hysteresis: still raised.
    expect(r.evaluate('WL-1', 'water-level', { level_m: 0.84 }, 1000, false)).toEqual([]);
    expect(r.evaluate('WL-1', 'water-level', { level_m: 0.79 }, 2000, false)).toMatchObject([{ rule: 'level-tier2', active: false }]);
    // An implausible value (outside the gauge's range) is not judged.
    expect(r.evaluate('WL-1', 'water-level', { level_m: 99 }, 3000, false)).toEqual([]);
  });

  it('a per-device override with a string limit, a point its device lacks and a misspelt key is refused at load, not kept as a rule that never fires', () => {
    const dir = tempDir();
    const rules = defaultRuleSet(profiles);
    const bad = { id: 'level-tier1', value: '0.5', point: 'no_such_point', valeu: 0.5 };
    rules.devices = { 'WL-1': [bad as never] };
    writeFileSync(join(dir, 'rules.json'), JSON.stringify(rules));
    writeFileSync(join(dir, 'edge.yaml'), `gateway: ${GW}\nmqtt: { url: "mqtt://127.0.0.1:1", username: u, password: p }\nrules: rules.json\nbuses: [{ id: bus-a, port: 502 }]\ndevices: [{ id: WL-1, profile: water-level, bus: bus-a, unitId: 1 }]\n`);
    let err: ConfigError | undefined;
    try {
      loadEdgeConfig(join(dir, 'edge.yaml'), profiles);
    } catch (e) {
      err = e as ConfigError;
    }
    expect(err).toBeInstanceOf(ConfigError);
    expect(err!.code).toBe('CS_DEV_RULES_INVALID');
    expect(err!.file).toBe(join(dir, 'rules.json'));
    expect(err!.problems).toEqual(expect.arrayContaining([
      { key: 'devices.WL-1[0].valeu', message: 'unknown key (a threshold rule has: hazard, severity, class, kind, point, op, value, hysteresis, holdMs, emergencyValue)' },
      { key: 'devices.WL-1[0].value', message: 'expected number or boolean, got "0.5"' },
      { key: 'devices.WL-1[0].point', message: 'device "WL-1" (water-level) has no point "no_such_point"' },
    ]));
    // The same override inline in the edge config is refused too.
    const inline = defaultRuleSet(profiles);
    inline.devices = { 'WL-1': [bad as never] };
    expect(() => validateEdgeConfig({
      gateway: GW, mqtt: { url: 'mqtt://127.0.0.1:1', username: 'u', password: 'p' }, rules: inline,
      buses: [{ id: 'bus-a', port: 502 }], devices: [{ id: 'WL-1', profile: 'water-level', bus: 'bus-a', unitId: 1 }],
    }, profiles)).toThrow(/rules\.devices\.WL-1\[0\]\.valeu: unknown key[\s\S]*rules\.devices\.WL-1\[0\]\.point: device "WL-1"/);
  });

  it('an edge config naming a rule set with an unknown point is refused at load, naming the key', () => {
    const dir = tempDir();
    writeFileSync(join(dir, 'rules.yaml'), 'kinds:\n  water-level:\n    - { kind: threshold, id: x, point: levl_m, op: ">", value: 1, hazard: waterlogging, severity: major, class: urgent }\n');
    writeFileSync(join(dir, 'edge.yaml'), `gateway: ${GW}\nmqtt: { url: "mqtt://127.0.0.1:1", username: u, password: p }\nrules: rules.yaml\nbuses: [{ id: bus-a, port: 502 }]\ndevices: [{ id: WL-1, profile: water-level, bus: bus-a, unitId: 1 }]\n`);
    try {
      loadEdgeConfig(join(dir, 'edge.yaml'), profiles);
      expect.unreachable();
    } catch (err) {
      expect(err).toBeInstanceOf(ConfigError);
      expect((err as ConfigError).problems).toEqual([{ key: 'kinds.water-level[0].point', message: 'profile "water-level" has no point "levl_m"' }]);
    }
  });
});
