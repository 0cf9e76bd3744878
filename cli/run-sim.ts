import { existsSync, readFileSync, mkdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { CsError } from '../lib/errors.ts';
import { createLogger, type Logger } from '../lib/log.ts';
import { loadProfiles } from '../devices/profile.ts';
import { loadDistrict, type District } from '../devices/district.ts';
import { buildSimulator } from '../devices/simulator.ts';
import { buildRtuSim } from '../devices/rtu-sim.ts';
import { writePoint, parseAssignment } from '../devices/sim-client.ts';
import { DeviceErrors } from '../devices/errors.ts';

/** What `sim` serves each bus on: a Modbus TCP endpoint, or an RTU line on a serial path. */
type Endpoint = { host: string; port: number } | { rtu: string };
type Endpoints = Record<string, Endpoint>;

export interface RunSimOptions {
  districtFile: string;
  dataDir: string;
  /** A directory of the user's own profiles. */
  profilesDir?: string;
  buses?: string[];
  /** `BUS=PATH` (or `PATH` when one bus is served): that bus over Modbus RTU on the serial PATH. */
  rtu?: string[];
  /** Baud of the RTU lines: each reply is delayed by its wire time (a pty has no baud of its own). */
  baudRate?: number;
  waitForSignal: (stop: () => Promise<void>) => Promise<void>;
  logger?: Logger;
}

/** `--rtu` values to bus id → serial path; each bus and path once, every bus one that is served. */
export function parseRtuOptions(values: string[], served: string[]): Map<string, string> {
  const out = new Map<string, string>();
  const paths = new Set<string>();
  for (const v of values) {
    const eq = v.indexOf('=');
    let bus: string;
    let path: string;
    if (eq > 0) {
      bus = v.slice(0, eq);
      path = v.slice(eq + 1);
    } else if (served.length === 1) {
      [bus, path] = [served[0], v];
    } else {
      throw new CsError('CS_CLI_USAGE', `--rtu ${v}: give BUS=PATH (buses served: ${served.join(', ')}), or serve one bus with --bus`);
    }
    if (!served.includes(bus)) throw new CsError('CS_CLI_USAGE', `--rtu ${v}: bus "${bus}" is not served (buses: ${served.join(', ')})`);
    if (!path) throw new CsError('CS_CLI_USAGE', `--rtu ${v}: the serial path is empty`);
    if (out.has(bus)) throw new CsError('CS_CLI_USAGE', `--rtu: bus ${bus} is given twice`);
    if (paths.has(path)) throw new CsError('CS_CLI_USAGE', `--rtu: serial path ${path} is given to two buses; one RS-485 line per path`);
    out.set(bus, path);
    paths.add(path);
  }
  return out;
}

function selectBuses(district: District, ids: string[] | undefined) {
  const unknown = (ids ?? []).filter((id) => !district.buses.some((b) => b.id === id));
  if (unknown.length) throw new CsError(DeviceErrors.SIM_DEVICE_UNKNOWN, `unknown bus ${unknown.join(', ')} (buses: ${district.buses.map((b) => b.id).join(', ')})`);
  return district.buses.filter((b) => !ids || ids.includes(b.id));
}

/** `citysteward sim`: one Modbus TCP endpoint per bus of the district, or an RTU line where `--rtu` says so. */
export async function runSimulators(o: RunSimOptions): Promise<void> {
  const log = o.logger ?? createLogger({ name: 'sim' });
  const profiles = loadProfiles({ userDir: o.profilesDir, logger: log });
  const district = loadDistrict(o.districtFile, profiles);
  const buses = selectBuses(district, o.buses);
  const rtu = parseRtuOptions(o.rtu ?? [], buses.map((b) => b.id));
  const stops: (() => Promise<void>)[] = [];
  const endpoints: Endpoints = {};
  const stopAll = async () => { for (const s of stops.splice(0).reverse()) await s(); };
  try {
    for (const bus of buses) {
      const devices = district.devices.filter((d) => d.bus === bus.id).map((d) => ({ id: d.id, profile: profiles.get(d.profile)!, unitId: d.unitId, scenario: d.scenario }));
      const serving = devices.map((d) => `${d.id}@${d.unitId}`).join(' ');
      const path = rtu.get(bus.id);
      if (path) {
        const sim = buildRtuSim({ path: resolve(path), slaves: devices, baudRate: o.baudRate, logger: log.child({ bus: bus.id }) });
        await sim.start().catch((err: Error) => {
          throw new CsError(DeviceErrors.SIM_LISTEN_FAILED, `bus ${bus.id}: cannot open serial port ${path}: ${err.message}`, { path });
        });
        stops.push(() => sim.stop());
        endpoints[bus.id] = { rtu: resolve(path) };
        console.log(`sim: bus ${bus.id} over RTU on ${resolve(path)}${o.baudRate ? ` at ${o.baudRate} baud` : ''} serving ${serving}`);
        continue;
      }
      const sim = buildSimulator({ host: bus.host, port: bus.port, devices, logger: log.child({ bus: bus.id }) });
      const at = await sim.start();
      stops.push(() => sim.stop());
      endpoints[bus.id] = at;
      console.log(`sim: bus ${bus.id} on ${at.host}:${at.port} serving ${serving}`);
    }
    mkdirSync(o.dataDir, { recursive: true });
    writeFileSync(join(o.dataDir, 'sim-endpoints.json'), JSON.stringify(endpoints, null, 2) + '\n');
  } catch (err) {
    await stopAll();
    throw err;
  }
  await o.waitForSignal(stopAll);
}

/** `citysteward sim set DEVICE POINT=VALUE`: a real Modbus write to the device's simulator. */
export async function simSet(o: { districtFile: string; dataDir: string; profilesDir?: string; device: string; assignment: string; host?: string; port?: number }): Promise<string> {
  const profiles = loadProfiles({ userDir: o.profilesDir });
  const district = loadDistrict(o.districtFile, profiles);
  const device = district.devices.find((d) => d.id === o.device);
  if (!device) throw new CsError(DeviceErrors.SIM_DEVICE_UNKNOWN, `no device "${o.device}" in ${o.districtFile}`);
  const bus = district.buses.find((b) => b.id === device.bus)!;
  const file = join(o.dataDir, 'sim-endpoints.json');
  const running: Endpoints = existsSync(file) ? JSON.parse(readFileSync(file, 'utf8')) : {};
  const ep = running[bus.id];
  if (ep && 'rtu' in ep && o.port === undefined) {
    throw new CsError(DeviceErrors.SIM_WRITE_FAILED, `bus ${bus.id} is served over RTU on ${ep.rtu}, a line with one master (the edge): \`sim set\` writes over Modbus TCP only`);
  }
  const tcp = ep && !('rtu' in ep) ? ep : undefined;
  const host = o.host ?? tcp?.host ?? bus.host;
  const port = o.port ?? tcp?.port ?? bus.port;
  if (!port) throw new CsError(DeviceErrors.SIM_WRITE_FAILED, `bus ${bus.id} has no fixed port and ${file} does not list it: is the demo or \`citysteward sim\` running with --data-dir ${o.dataDir}? Or give --port`);
  const { key, value } = parseAssignment(o.assignment);
  const profile = profiles.get(device.profile)!;
  await writePoint({ host, port, unitId: device.unitId, profile, key, value });
  return `${device.id} ${key}=${value} written to unit ${device.unitId} on ${host}:${port}`;
}
