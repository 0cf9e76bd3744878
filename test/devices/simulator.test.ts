import Modbus from 'modbus-serial';
import { afterEach, describe, expect, it } from 'vitest';
import { parseConfig } from '../../lib/config.ts';
import { decodePoint } from '../../devices/codec.ts';
import { loadDistrict, type Scenario } from '../../devices/district.ts';
import { getPoint, loadProfiles, Profile } from '../../devices/profile.ts';
import { buildSimulator, type Simulator, type SimulatorOptions } from '../../devices/simulator.ts';
import { parseAssignment, writePoint } from '../../devices/sim-client.ts';

const ModbusRTU = Modbus.default;
type Client = InstanceType<typeof ModbusRTU>;

const profiles = loadProfiles();
const manhole = profiles.get('manhole-cover')!;
const waterLevel = profiles.get('water-level')!;
const pipeline = profiles.get('pipeline')!;

/** A profile with coils and discrete inputs, which the built-in ones do not use. */
const pump = parseConfig(`
id: test-pump
kind: pipeline
name: Test pump station
points:
  - { key: running, name: Running, table: discrete, address: 0, type: bits, sim: { base: 1 } }
  - { key: pump_on, name: Pump command, table: coil, address: 0, type: bits, writable: true }
  - { key: alarm_reset, name: Alarm reset, table: coil, address: 1, type: bits }
  - { key: speed_rpm, name: Speed, table: input, address: 0, type: uint16, sim: { base: 1450 } }
`, Profile);

const sims: Simulator[] = [];
const clients: Client[] = [];

afterEach(async () => {
  for (const c of clients.splice(0)) await new Promise<void>((resolve) => (c.isOpen ? c.close(() => resolve()) : resolve()));
  for (const s of sims.splice(0)) await s.stop();
});

async function startSim(opts: SimulatorOptions): Promise<{ sim: Simulator; port: number }> {
  const sim = buildSimulator(opts);
  sims.push(sim);
  const { port } = await sim.start();
  return { sim, port };
}

async function connect(port: number, unitId: number, timeoutMs = 2000): Promise<Client> {
  const c = new ModbusRTU();
  clients.push(c);
  c.setTimeout(timeoutMs);
  await c.connectTCP('127.0.0.1', { port });
  c.setID(unitId);
  return c;
}

/** The Modbus exception code (or errno) a request fails with. */
async function failureOf(p: Promise<unknown>): Promise<number | string> {
  try {
    await p;
  } catch (err) {
    const e = err as { modbusCode?: number; errno?: number | string; code?: string };
    return e.modbusCode ?? (typeof e.errno === 'string' ? e.errno : e.code) ?? String(err);
  }
  throw new Error('expected the request to fail');
}

/** A clock the test moves by hand. */
function clock(start = 1_700_000_000_000) {
  let t = start;
  return { now: () => t, advance: (ms: number) => { t += ms; } };
}

describe('Modbus TCP simulator', () => {
  it('serves a device whose registers decode to the profile base values within their noise', async () => {
    const { port } = await startSim({ devices: [{ id: 'XZ-MH-001', profile: manhole, unitId: 1 }] });
    const c = await connect(port, 1);
    // 1-based manual addresses 1..7 are protocol addresses 0..6 (addressBase 1).
    const { data } = await c.readHoldingRegisters(0, 7);
    const at = (key: string) => {
      const p = getPoint(manhole, key);
      const from = p.address - manhole.addressBase;
      return decodePoint(p, data.slice(from, from + (p.type === 'float32' ? 2 : 1)), manhole.order);
    };
    expect(at('tilt_deg')).toBeGreaterThanOrEqual(0.4);
    expect(at('tilt_deg')).toBeLessThanOrEqual(0.8);
    expect(at('cover_open')).toBe(false);
    expect(at('water_depth_m')).toBeGreaterThanOrEqual(0.04);
    expect(at('water_depth_m')).toBeLessThanOrEqual(0.06);
    expect(at('battery_pct')).toBe(86);
  });

  it('serves exact base values for points without noise, and text points carry the device id', async () => {
    const { port, sim } = await startSim({ devices: [{ id: 'XZ-PL-001', profile: pipeline, unitId: 5 }] });
    const c = await connect(port, 5);
    const { data } = await c.readHoldingRegisters(0, 12);
    expect(decodePoint(getPoint(pipeline, 'totalizer_m3'), data.slice(4, 8), pipeline.order)).toBe(125000);
    expect(decodePoint(getPoint(pipeline, 'tag'), data.slice(8, 12), pipeline.order)).toBe('XZ-PL-00');
    expect(sim.value('XZ-PL-001', 'totalizer_m3')).toBe(125000);
  });

  it('answers two unit ids on one endpoint separately', async () => {
    const { port } = await startSim({
      devices: [
        { id: 'XZ-WL-001', profile: waterLevel, unitId: 1 },
        { id: 'XZ-MH-001', profile: manhole, unitId: 2 },
      ],
    });
    const gauge = await connect(port, 1);
    expect((await gauge.readHoldingRegisters(2, 1)).data).toEqual([92]);
    const cover = await connect(port, 2);
    expect((await cover.readHoldingRegisters(6, 1)).data).toEqual([86]);
    // The gauge maps three registers only; address 6 exists on unit 2, not on unit 1.
    expect(await failureOf(gauge.readHoldingRegisters(6, 1))).toBe(2);
  });

  it('answers exception 0x0B for a unit id no device has', async () => {
    const { port } = await startSim({ devices: [{ id: 'XZ-WL-001', profile: waterLevel, unitId: 1 }] });
    const c = await connect(port, 9);
    expect(await failureOf(c.readHoldingRegisters(0, 1))).toBe(0x0b);
  });

  it('leaves a request for an unknown unit id unanswered when asked to be silent, while known units still answer', async () => {
    const { port } = await startSim({ devices: [{ id: 'XZ-WL-001', profile: waterLevel, unitId: 1 }], unknownUnit: 'silent' });
    const ghost = await connect(port, 9, 200);
    expect(await failureOf(ghost.readHoldingRegisters(0, 1))).toBe('ETIMEDOUT');
    const gauge = await connect(port, 1);
    expect((await gauge.readHoldingRegisters(2, 1)).data).toEqual([92]);
  });

  it('answers exception 2 for a register address outside the image', async () => {
    const { port } = await startSim({ devices: [{ id: 'XZ-WL-001', profile: waterLevel, unitId: 1 }] });
    const c = await connect(port, 1);
    expect(await failureOf(c.readHoldingRegisters(100, 1))).toBe(2);
    // Starts inside the image (0..2) but runs past its end (Modbus Application Protocol 6.3).
    expect(await failureOf(c.readHoldingRegisters(2, 2))).toBe(2);
    // The gauge has no input registers at all.
    expect(await failureOf(c.readInputRegisters(0, 1))).toBe(2);
    expect(await failureOf(c.readCoils(0, 1))).toBe(2);
  });

  it('answers exception 3 for a read of more than 125 registers', async () => {
    const { port } = await startSim({ devices: [{ id: 'XZ-WL-001', profile: waterLevel, unitId: 1 }] });
    const c = await connect(port, 1);
    expect(await failureOf(c.readHoldingRegisters(0, 126))).toBe(3);
  });

  it('changes a point written through writePoint, and the value sticks while noise moves the others', async () => {
    const t = clock();
    const { port, sim } = await startSim({
      devices: [{ id: 'XZ-WL-001', profile: waterLevel, unitId: 6 }], now: t.now, tickMs: 250,
    });
    const c = await connect(port, 6);
    const level = getPoint(waterLevel, 'level_m');
    const readLevel = async () => decodePoint(level, (await c.readHoldingRegisters(0, 2)).data, waterLevel.order);

    // Before the write, noise moves the level from tick to tick.
    const before = new Set<unknown>();
    for (let i = 0; i < 8; i++) { before.add(await readLevel()); t.advance(250); }
    expect(before.size).toBeGreaterThan(1);

    const { key, value } = parseAssignment('level_m=0.92');
    const written = await writePoint({ host: '127.0.0.1', port, unitId: 6, profile: waterLevel, key, value });
    // 920 mm as int32, word-swapped (CDAB): low word first.
    expect(written).toEqual({ registers: [920, 0] });

    for (let i = 0; i < 8; i++) {
      expect(await readLevel()).toBe(0.92);
      t.advance(250);
    }
    expect(sim.value('XZ-WL-001', 'level_m')).toBe(0.92);
  });

  it('writes multi-register values with FC16 in the point byte order and reads them back', async () => {
    const { port, sim } = await startSim({ devices: [{ id: 'XZ-PL-001', profile: pipeline, unitId: 3 }] });
    await writePoint({ host: '127.0.0.1', port, unitId: 3, profile: pipeline, key: 'pressure_mpa', value: '0.125' });
    await writePoint({ host: '127.0.0.1', port, unitId: 3, profile: pipeline, key: 'flow_m3h', value: -12.5 });
    expect(sim.value('XZ-PL-001', 'pressure_mpa')).toBe(0.125);
    expect(sim.value('XZ-PL-001', 'flow_m3h')).toBe(-12.5);
    const c = await connect(port, 3);
    // float32 0.125 = 3E 00 00 00 (ABCD); int32 -1250 = FF FF FB 1E, bytes swapped per word (BADC).
    expect((await c.readHoldingRegisters(0, 4)).data).toEqual([0x3e00, 0x0000, 0xffff, 0x1efb]);
  });

  it('writes a bit inside a register and keeps the register\'s other bits', async () => {
    const { port, sim } = await startSim({ devices: [{ id: 'XZ-MH-001', profile: manhole, unitId: 1 }] });
    const c = await connect(port, 1);
    // Another master sets bit 4 of the status register (protocol address 2) first.
    await c.writeRegister(2, 0x0010);
    const out = await writePoint({ host: '127.0.0.1', port, unitId: 1, profile: manhole, key: 'cover_open', value: 'true' });
    expect(out).toEqual({ registers: [0x0011] });
    expect(sim.registers('XZ-MH-001').holding[2]).toBe(0x0011);
    expect(sim.value('XZ-MH-001', 'cover_open')).toBe(true);
  });

  it('in writable-only mode refuses a master write to a read-only register with exception 2 and leaves it unchanged', async () => {
    const { port, sim } = await startSim({ writes: 'writable', devices: [{ id: 'XZ-MH-001', profile: manhole, unitId: 1 }] });
    const c = await connect(port, 1);
    const battery = sim.registers('XZ-MH-001').holding[6];
    expect(await failureOf(c.writeRegister(6, 5))).toBe(2);
    expect(await failureOf(c.writeRegisters(3, [1, 2]))).toBe(2);
    expect(sim.registers('XZ-MH-001').holding[6]).toBe(battery);
  });

  it('drives a point the profile marks read-only, as a test bench must (sim set tilts a cover)', async () => {
    const { port, sim } = await startSim({ devices: [{ id: 'XZ-MH-001', profile: manhole, unitId: 1 }] });
    await writePoint({ host: '127.0.0.1', port, unitId: 1, profile: manhole, key: 'tilt_deg', value: 45 });
    expect(sim.value('XZ-MH-001', 'tilt_deg')).toBe(45);
  });

  it('refuses a value that does not parse to the point type before connecting', async () => {
    await expect(writePoint({ host: '127.0.0.1', port: 1, unitId: 1, profile: waterLevel, key: 'level_m', value: 'high' }))
      .rejects.toMatchObject({ code: 'CS_DEV_CODEC_TYPE', message: expect.stringContaining('needs a number in m') });
  });

  it('reports a write the device refuses with the Modbus exception code', async () => {
    const { port } = await startSim({ devices: [{ id: 'XZ-WL-001', profile: waterLevel, unitId: 1 }] });
    await expect(writePoint({ host: '127.0.0.1', port, unitId: 2, profile: waterLevel, key: 'level_m', value: 0.5 }))
      .rejects.toMatchObject({ code: 'CS_DEV_SIM_WRITE_FAILED', details: expect.objectContaining({ modbusCode: 0x0b, step: 'FC16 write registers' }) });
  });

  it('reports a write to an endpoint nobody listens on as a connect failure', async () => {
    const { port, sim } = await startSim({ devices: [{ id: 'XZ-WL-001', profile: waterLevel, unitId: 1 }] });
    await sim.stop();
    await expect(writePoint({ host: '127.0.0.1', port, unitId: 1, profile: waterLevel, key: 'level_m', value: 0.5, timeoutMs: 500 }))
      .rejects.toMatchObject({ code: 'CS_DEV_SIM_WRITE_FAILED', details: expect.objectContaining({ step: 'connect' }) });
  });

  it('writes coils with FC5 and FC15 and serves discrete inputs and input registers', async () => {
    const { port, sim } = await startSim({ writes: 'writable', devices: [{ id: 'PS-1', profile: pump, unitId: 4 }] });
    expect(await writePoint({ host: '127.0.0.1', port, unitId: 4, profile: pump, key: 'pump_on', value: 'on' })).toEqual({ coil: true });
    expect(sim.value('PS-1', 'pump_on')).toBe(true);
    const c = await connect(port, 4);
    expect((await c.readCoils(0, 2)).data.slice(0, 2)).toEqual([true, false]);
    expect((await c.readDiscreteInputs(0, 1)).data[0]).toBe(true);
    expect((await c.readInputRegisters(0, 1)).data).toEqual([1450]);
    await c.writeCoils(0, [false]);
    expect(sim.value('PS-1', 'pump_on')).toBe(false);
    // alarm_reset is not writable.
    expect(await failureOf(c.writeCoil(1, true))).toBe(2);
  });

  it('jumps a sudden-breach point to its value once the scenario time has passed', async () => {
    const t = clock();
    const scenario: Scenario = { kind: 'sudden-breach', point: 'level_m', afterS: 12, to: 0.92 };
    const { port, sim } = await startSim({ devices: [{ id: 'XZ-WL-001', profile: waterLevel, unitId: 6, scenario }], now: t.now });
    const c = await connect(port, 6);
    const level = getPoint(waterLevel, 'level_m');
    const readLevel = async () => decodePoint(level, (await c.readHoldingRegisters(0, 2)).data, waterLevel.order) as number;

    expect(await readLevel()).toBeLessThan(0.03);
    t.advance(11_900);
    expect(await readLevel()).toBeLessThan(0.03);
    t.advance(100);
    const breached = await readLevel();
    expect(breached).toBeGreaterThanOrEqual(0.915);
    expect(breached).toBeLessThanOrEqual(0.925);
    expect(sim.value('XZ-WL-001', 'level_m')).toBe(breached);
  });

  it('raises a slow-rise point linearly from its base to its target', async () => {
    const t = clock();
    const scenario: Scenario = { kind: 'slow-rise', point: 'level_m', afterS: 5, to: 0.6, overS: 100 };
    const { sim } = await startSim({ devices: [{ id: 'XZ-WL-002', profile: waterLevel, unitId: 6, scenario }], now: t.now });
    t.advance(55_000);
    // Halfway: 0.02 + (0.6 − 0.02) / 2 = 0.31, ± 0.005 noise.
    expect(Math.abs((sim.value('XZ-WL-002', 'level_m') as number) - 0.31)).toBeLessThanOrEqual(0.0051);
    t.advance(1_000_000);
    expect(Math.abs((sim.value('XZ-WL-002', 'level_m') as number) - 0.6)).toBeLessThanOrEqual(0.0051);
  });

  it('holds a point set through set() against its scenario', async () => {
    const t = clock();
    const scenario: Scenario = { kind: 'sudden-breach', point: 'level_m', afterS: 1, to: 0.92 };
    const { sim } = await startSim({ devices: [{ id: 'XZ-WL-001', profile: waterLevel, unitId: 1, scenario }], now: t.now });
    sim.set('XZ-WL-001', 'level_m', 0.1);
    t.advance(10_000);
    expect(sim.value('XZ-WL-001', 'level_m')).toBe(0.1);
  });

  it('draws the same noise from the same seed', async () => {
    const t = clock();
    const devices = [{ id: 'XZ-MH-001', profile: manhole, unitId: 1 }];
    const a = await startSim({ devices, now: t.now, seed: 7 });
    const b = await startSim({ devices, now: t.now, seed: 7 });
    for (let i = 0; i < 3; i++) {
      expect(a.sim.registers('XZ-MH-001')).toEqual(b.sim.registers('XZ-MH-001'));
      t.advance(1000);
    }
  });

  it('closes its port on stop and binds the same port again on restart', async () => {
    const { sim, port } = await startSim({ devices: [{ id: 'XZ-WL-001', profile: waterLevel, unitId: 1 }] });
    const first = await connect(port, 1);
    expect((await first.readHoldingRegisters(2, 1)).data).toEqual([92]);
    await sim.stop();
    const refused = new ModbusRTU();
    clients.push(refused);
    expect(await failureOf(refused.connectTCP('127.0.0.1', { port }))).toBe('ECONNREFUSED');
    expect(await sim.start()).toEqual({ host: '127.0.0.1', port });
    const again = await connect(port, 1);
    expect((await again.readHoldingRegisters(2, 1)).data).toEqual([92]);
  });

  it('refuses to start on a port another endpoint holds, naming the address', async () => {
    const { port } = await startSim({ devices: [{ id: 'XZ-WL-001', profile: waterLevel, unitId: 1 }] });
    const second = buildSimulator({ port, devices: [{ id: 'XZ-WL-002', profile: waterLevel, unitId: 1 }] });
    sims.push(second);
    await expect(second.start()).rejects.toMatchObject({
      code: 'CS_DEV_SIM_LISTEN_FAILED', message: expect.stringContaining(`127.0.0.1:${port}`),
    });
  });

  it('shares one listen between overlapping starts', async () => {
    const sim = buildSimulator({ devices: [{ id: 'XZ-WL-001', profile: waterLevel, unitId: 1 }] });
    sims.push(sim);
    const [a, b] = await Promise.all([sim.start(), sim.start()]);
    expect(b).toEqual(a);
    expect(sim.port).toBe(a.port);
  });

  it('names the unknown device in value, set and registers', () => {
    const sim = buildSimulator({ devices: [{ id: 'XZ-WL-001', profile: waterLevel, unitId: 1 }] });
    expect(() => sim.value('XZ-WL-404', 'level_m')).toThrow(expect.objectContaining({ code: 'CS_DEV_SIM_DEVICE_UNKNOWN' }));
    expect(() => sim.set('XZ-WL-404', 'level_m', 1)).toThrow(/no device "XZ-WL-404" \(devices: XZ-WL-001\)/);
    expect(() => sim.registers('XZ-WL-404')).toThrow(expect.objectContaining({ code: 'CS_DEV_SIM_DEVICE_UNKNOWN' }));
    expect(() => sim.value('XZ-WL-001', 'depth')).toThrow(expect.objectContaining({ code: 'CS_DEV_POINT_UNKNOWN' }));
  });

  it('refuses two devices on one unit id, naming the key', () => {
    expect(() => buildSimulator({
      devices: [
        { id: 'A', profile: waterLevel, unitId: 1 },
        { id: 'B', profile: manhole, unitId: 1 },
      ],
    })).toThrow(expect.objectContaining({ code: 'CS_DEV_SIM_CONFIG_INVALID', message: expect.stringContaining('devices[1].unitId: unit id 1 is already used by A') }));
  });

  it('refuses a unit id outside 1..247 and a scenario on an unknown point, naming the key', () => {
    expect(() => buildSimulator({ devices: [{ id: 'A', profile: waterLevel, unitId: 0 }] }))
      .toThrow(/devices\[0\]\.unitId: must be an integer 1\.\.247/);
    const scenario: Scenario = { kind: 'sudden-breach', point: 'depth_m', afterS: 0, to: 1 };
    expect(() => buildSimulator({ devices: [{ id: 'A', profile: waterLevel, unitId: 1, scenario }] }))
      .toThrow(/devices\[0\]\.scenario\.point: profile water-level has no point "depth_m"/);
  });
});

describe('the Xiangzhou district on simulators', () => {
  it('serves every device of every bus, each on its own unit id, decoding to what the simulator holds', async () => {
    const district = loadDistrict(new URL('../../devices/district/xiangzhou.yaml', import.meta.url).pathname, profiles);
    const t = clock();
    let served = 0;
    for (const bus of district.buses) {
      const devices = district.devices.filter((d) => d.bus === bus.id)
        .map((d) => ({ id: d.id, profile: profiles.get(d.profile)!, unitId: d.unitId, scenario: d.scenario }));
      const { port, sim } = await startSim({ host: bus.host, port: bus.port, devices, now: t.now });
      for (const d of devices) {
        const c = await connect(port, d.unitId);
        const p = d.profile.points[0];
        const from = p.address - d.profile.addressBase;
        const { data } = await c.readHoldingRegisters(from, p.type === 'int32' || p.type === 'float32' ? 2 : 1);
        expect(decodePoint(p, data, d.profile.order)).toBe(sim.value(d.id, p.key));
        served++;
      }
    }
    expect(served).toBe(30);
  });
});

describe('parseAssignment', () => {
  it('splits POINT=VALUE at the first equals sign', () => {
    expect(parseAssignment('level_m=0.92')).toEqual({ key: 'level_m', value: '0.92' });
    expect(parseAssignment('tag=a=b')).toEqual({ key: 'tag', value: 'a=b' });
  });

  it('refuses text without a point, a value or an equals sign, with an example', () => {
    for (const bad of ['level_m', '=0.9', 'level_m=', 'Level=1']) {
      expect(() => parseAssignment(bad)).toThrow(expect.objectContaining({
        code: 'CS_DEV_ASSIGNMENT_INVALID', message: expect.stringContaining('POINT=VALUE'),
      }));
    }
  });
});
