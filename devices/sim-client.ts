import Modbus from 'modbus-serial';
import { CsError } from '../lib/errors.ts';
import { encodePoint, type EngValue } from './codec.ts';
import { DeviceErrors } from './errors.ts';
import { getPoint, protocolAddress, type Point, type Profile } from './profile.ts';

/**
 * A one-shot Modbus master that writes one point of a device, for the command line
 * (`citysteward sim set DEVICE POINT=VALUE`) and tests. It encodes with the same codec the
 * edge gateway decodes with, so a value written is the value read back.
 */

// modbus-serial is CommonJS; under NodeNext its default export is reached as `.default`.
const ModbusRTU = Modbus.default;
type ModbusClient = InstanceType<typeof ModbusRTU>;

export interface WritePointOptions {
  host: string;
  port: number;
  unitId: number;
  profile: Profile;
  key: string;
  /** An engineering value, or text from a command line ('0.92', 'true') parsed to the point's type. */
  value: EngValue | string;
  /** Connect and response timeout; default 2000 ms. */
  timeoutMs?: number;
}

const KEY = /^[a-z][a-z0-9_]{0,63}$/;

/** Splits `POINT=VALUE` (e.g. `level_m=0.92`) at its first `=`. */
export function parseAssignment(text: string): { key: string; value: string } {
  const at = typeof text === 'string' ? text.indexOf('=') : -1;
  const key = at > 0 ? text.slice(0, at).trim() : '';
  const value = at > 0 ? text.slice(at + 1).trim() : '';
  if (!KEY.test(key) || value === '') {
    throw new CsError(
      DeviceErrors.ASSIGNMENT_INVALID,
      `expected POINT=VALUE with a point key in lower case (e.g. level_m=0.92), got ${JSON.stringify(text)}`,
      { text },
    );
  }
  return { key, value };
}

/** Parses command-line text to a value of the point's type: a number, a flag or text. */
export function parseValue(point: Point, text: string): EngValue {
  if (point.type === 'string') return text;
  const t = text.trim();
  if (point.type === 'bits' || point.table === 'coil' || point.table === 'discrete') {
    const lower = t.toLowerCase();
    if (['true', '1', 'on'].includes(lower)) return true;
    if (['false', '0', 'off'].includes(lower)) return false;
    throw new CsError(DeviceErrors.CODEC_TYPE, `point ${point.key} is a flag: use true/false, on/off or 1/0, got ${JSON.stringify(text)}`);
  }
  const n = t === '' ? Number.NaN : Number(t);
  if (!Number.isFinite(n)) {
    throw new CsError(DeviceErrors.CODEC_TYPE, `point ${point.key} needs a number${point.unit ? ` in ${point.unit}` : ''}, got ${JSON.stringify(text)}`);
  }
  return n;
}

function checkOptions(o: WritePointOptions): void {
  const bad = (key: string, message: string) => new CsError(DeviceErrors.SIM_WRITE_FAILED, `writePoint ${key}: ${message}`, { key });
  if (typeof o.host !== 'string' || !o.host) throw bad('host', 'is required');
  if (!Number.isInteger(o.port) || o.port < 1 || o.port > 65535) throw bad('port', `must be an integer 1..65535, got ${o.port}`);
  // Modbus over Serial Line 2.2: 1..247 address one device (0 is broadcast, never answered).
  if (!Number.isInteger(o.unitId) || o.unitId < 1 || o.unitId > 247) throw bad('unitId', `must be an integer 1..247, got ${o.unitId}`);
  if (o.timeoutMs !== undefined && !(Number.isInteger(o.timeoutMs) && o.timeoutMs > 0)) throw bad('timeoutMs', `must be a positive integer, got ${o.timeoutMs}`);
}

/** Closes the client; a socket that never opened is destroyed rather than waited on. */
function closeClient(client: ModbusClient, timeoutMs: number): Promise<void> {
  return new Promise((resolve) => {
    if (!client.isOpen) {
      client.destroy(() => {});
      resolve();
      return;
    }
    const fallback = setTimeout(() => { client.destroy(() => {}); resolve(); }, timeoutMs);
    client.close(() => { clearTimeout(fallback); resolve(); });
  });
}

/**
 * Writes one point with a real Modbus request: FC16 for a multi-register value, FC6 for one
 * register, FC5 for a coil (Modbus Application Protocol 6.5, 6.6, 6.12). A bit inside a register is
 * read first (FC3) and written back with the other bits kept. Returns what was written.
 */
export async function writePoint(opts: WritePointOptions): Promise<{ registers?: number[]; coil?: boolean }> {
  checkOptions(opts);
  const { profile, key, unitId, host, port } = opts;
  const timeoutMs = opts.timeoutMs ?? 2000;
  const point = getPoint(profile, key);
  if (point.table === 'input' || point.table === 'discrete') {
    throw new CsError(DeviceErrors.POINT_READONLY, `point ${key} of profile ${profile.id} is a ${point.table === 'input' ? 'input register' : 'discrete input'}: Modbus has no function to write it`);
  }
  const value = typeof opts.value === 'string' ? parseValue(point, opts.value) : opts.value;
  // Encode before connecting: a value the codec refuses never reaches the wire.
  let encoded = encodePoint(point, value, profile.order, 0);
  const addr = protocolAddress(profile, point);
  const where = `unit ${unitId} at ${host}:${port}`;

  const client = new ModbusRTU();
  client.setTimeout(timeoutMs);
  // The socket may report errors after a request failed; they are answered by the rejection.
  client.on('error', () => {});
  let step = 'connect';
  try {
    await client.connectTCP(host, { port });
    client.setID(unitId);
    if (typeof encoded === 'boolean') {
      step = 'FC5 write coil';
      await client.writeCoil(addr, encoded);
      return { coil: encoded };
    }
    if (point.type === 'bits') {
      step = 'FC3 read';
      const current = (await client.readHoldingRegisters(addr, 1)).data[0];
      encoded = encodePoint(point, value, profile.order, current) as number[];
    }
    if (encoded.length === 1) {
      step = 'FC6 write register';
      await client.writeRegister(addr, encoded[0]);
    } else {
      step = 'FC16 write registers';
      await client.writeRegisters(addr, encoded);
    }
    return { registers: encoded };
  } catch (err) {
    const e = err as Error & { modbusCode?: number; errno?: string; code?: string };
    throw new CsError(
      DeviceErrors.SIM_WRITE_FAILED,
      `writing ${key}=${String(value)} to ${where} failed at ${step}: ${e.message}`,
      { host, port, unitId, key, step, modbusCode: e.modbusCode, errno: e.errno ?? e.code },
    );
  } finally {
    await closeClient(client, timeoutMs);
  }
}
