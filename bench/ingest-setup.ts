/**
 * The ingest bench's city (bench/ingest-bench.ts): G gateways `gw-N` (the bench identities), each with
 * one bus of D manhole covers (6 values a reading), as a district file; our credentials for them; the
 * readings every path receives; and process figures read from /proc.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { CredentialStore } from '../gateway/credentials.ts';
import { SERVICE, account, gatewayName } from './identities.ts';

export const deviceName = (g: number, d: number): string => `MH-${g}-${d}`;

/** Writes `district.yaml` into `dir` and returns its path. */
export function writeDistrict(dir: string, gateways: number, devices: number): string {
  const file = join(dir, 'district.yaml');
  writeFileSync(file, stringify({
    name: 'Ingest bench district', county: '440402',
    units: [{ id: 'u-ops', name: 'Operations' }],
    gateways: Array.from({ length: gateways }, (_, g) => ({ id: gatewayName(g), name: `gateway ${g}` })),
    buses: Array.from({ length: gateways }, (_, g) => ({ id: `bus-${g}`, gateway: gatewayName(g), host: '127.0.0.1', port: 0 })),
    devices: Array.from({ length: gateways * devices }, (_, i) => {
      const g = Math.floor(i / devices);
      const d = i % devices;
      return {
        id: deviceName(g, d), profile: 'manhole-cover', name: `cover ${g}/${d}`,
        componentCode: `44040201040${String(i + 1).padStart(5, '0')}`,
        lat: 22.27 + g * 1e-4, lon: 113.55 + d * 1e-4,
        ownerUnit: 'u-ops', maintainerUnit: 'u-ops', bus: `bus-${g}`, unitId: d + 1,
      };
    }),
  }));
  return file;
}

/** Our credentials file (`credentials.json` in `dir`): every gateway and the service identity. */
export function writeCredentials(dir: string, gateways: number): void {
  const store = CredentialStore.open(join(dir, 'credentials.json'));
  for (let i = 0; i < gateways; i++) store.create(gatewayName(i), 'gateway', account(gatewayName(i)).password);
  store.create(SERVICE, 'service', account(SERVICE).password);
}

/** A reading of cover `d` of gateway `g`: in range (no breach), so every path does the same work. */
export function readingPayload(g: number, d: number, seq: number, ts: string): string {
  return JSON.stringify({
    seq, ts, device: deviceName(g, d), stream: 'bench',
    values: { tilt_deg: 1.5, cover_open: false, water_depth_m: 0.12, gas_ch4_ppm: 40, gas_h2s_ppm: 1.2, battery_pct: 87 },
    quality: 'good', historical: false,
  });
}

/** User + system CPU seconds of a process, from /proc/PID/stat (0 once it is gone). */
export function cpuSeconds(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(f[11]) + Number(f[12])) / 100; // utime, stime in clock ticks (USER_HZ = 100)
  } catch {
    return 0;
  }
}

/** Peak resident set (VmHWM) in MiB. */
export function peakRssMiB(pid: number): number {
  try {
    const m = /^VmHWM:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) / 1024 : 0;
  } catch {
    return 0;
  }
}

/** Bytes the process caused to be written to storage (/proc/PID/io write_bytes). */
export function writeBytes(pid: number): number {
  try {
    const m = /^write_bytes:\s+(\d+)/m.exec(readFileSync(`/proc/${pid}/io`, 'utf8'));
    return m ? Number(m[1]) : 0;
  } catch {
    return 0;
  }
}

/** The pid of the machine's Redis server (its CPU is the stream path's too). */
export function redisPid(info: string): number | undefined {
  const m = /process_id:(\d+)/.exec(info);
  return m ? Number(m[1]) : undefined;
}

export const NODE_RED_VERSION = '4.1';

/** Installs node-red@4.1 into the cache folder once (npm, ~15 s); returns the folder. */
export function installNodeRed(): string {
  const dir = join(homedir(), '.cache', 'citysteward', `node-red-${NODE_RED_VERSION}`);
  if (existsSync(join(dir, 'node_modules', 'node-red', 'package.json'))) return dir;
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'package.json'), '{"name":"nr-bench","private":true}\n');
  execFileSync('npm', ['install', '--no-audit', '--no-fund', '--ignore-scripts', `node-red@${NODE_RED_VERSION}`], { cwd: dir, stdio: 'inherit' });
  return dir;
}
