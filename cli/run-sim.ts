import { existsSync, readFileSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { CsError } from '../lib/errors.ts';
import { createLogger } from '../lib/log.ts';
import { loadProfiles } from '../devices/profile.ts';
import { loadDistrict } from '../devices/district.ts';
import { buildSimulator, type Simulator } from '../devices/simulator.ts';
import { writePoint, parseAssignment } from '../devices/sim-client.ts';
import { DeviceErrors } from '../devices/errors.ts';

type Endpoints = Record<string, { host: string; port: number }>;

/** `citysteward sim`: one Modbus TCP endpoint per bus of the district. */
export async function runSimulators(o: { districtFile: string; dataDir: string; buses?: string[]; waitForSignal: (stop: () => Promise<void>) => Promise<void> }): Promise<void> {
  const profiles = loadProfiles();
  const district = loadDistrict(o.districtFile, profiles);
  const buses = district.buses.filter((b) => !o.buses || o.buses.includes(b.id));
  const unknown = (o.buses ?? []).filter((id) => !district.buses.some((b) => b.id === id));
  if (unknown.length) throw new CsError(DeviceErrors.SIM_DEVICE_UNKNOWN, `unknown bus ${unknown.join(', ')} (buses: ${district.buses.map((b) => b.id).join(', ')})`);
  const log = createLogger({ name: 'sim' });
  const sims: Simulator[] = [];
  const endpoints: Endpoints = {};
  for (const bus of buses) {
    const devices = district.devices.filter((d) => d.bus === bus.id).map((d) => ({ id: d.id, profile: profiles.get(d.profile)!, unitId: d.unitId, scenario: d.scenario }));
    const sim = buildSimulator({ host: bus.host, port: bus.port, devices, logger: log.child({ bus: bus.id }) });
    const at = await sim.start();
    sims.push(sim);
    endpoints[bus.id] = at;
    console.log(`sim: bus ${bus.id} on ${at.host}:${at.port} serving ${devices.map((d) => `${d.id}@${d.unitId}`).join(' ')}`);
  }
  mkdirSync(o.dataDir, { recursive: true });
  writeFileSync(join(o.dataDir, 'sim-endpoints.json'), JSON.stringify(endpoints, null, 2) + '\n');
  await o.waitForSignal(async () => { for (const s of sims) await s.stop(); });
}

/** `citysteward sim set DEVICE POINT=VALUE`: a real Modbus write to the device's simulator. */
export async function simSet(o: { districtFile: string; dataDir: string; device: string; assignment: string; host?: string; port?: number }): Promise<string> {
  const profiles = loadProfiles();
  const district = loadDistrict(o.districtFile, profiles);
  const device = district.devices.find((d) => d.id === o.device);
  if (!device) throw new CsError(DeviceErrors.SIM_DEVICE_UNKNOWN, `no device "${o.device}" in ${o.districtFile}`);
  const bus = district.buses.find((b) => b.id === device.bus)!;
  const file = join(o.dataDir, 'sim-endpoints.json');
  const running: Endpoints = existsSync(file) ? JSON.parse(readFileSync(file, 'utf8')) : {};
  const host = o.host ?? running[bus.id]?.host ?? bus.host;
  const port = o.port ?? running[bus.id]?.port ?? bus.port;
  if (!port) throw new CsError(DeviceErrors.SIM_WRITE_FAILED, `bus ${bus.id} has no fixed port and ${file} does not list it: is the demo or \`citysteward sim\` running with --data-dir ${o.dataDir}? Or give --port`);
  const { key, value } = parseAssignment(o.assignment);
  const profile = profiles.get(device.profile)!;
  await writePoint({ host, port, unitId: device.unitId, profile, key, value });
  return `${device.id} ${key}=${value} written to unit ${device.unitId} on ${host}:${port}`;
}
