import { CsError } from '../lib/errors.ts';
import type { Table } from '../devices/profile.ts';
import { EdgeErrors } from './errors.ts';

/**
 * Modbus protocol data units and the two framings the edge speaks, written out rather than taken
 * from modbus-serial so that every fault is told apart (docs/targets.md#reliability-and-security-figures): modbus-serial's RTU
 * port skips a reply from another unit (a wrong unit id becomes a timeout), keeps stale bytes
 * across requests and cannot tell a truncated frame from silence.
 *
 * - PDU: Modbus Application Protocol V1.1b3 section 6 (FC 1, 2, 3, 4, 5, 6, 15, 16) and 7 (exceptions).
 * - RTU: Modbus over Serial Line V1.02 section 2.5.1: unit, PDU, CRC-16 (poly 0xA001, low byte first).
 * - MBAP: Modbus Messaging on TCP/IP Implementation Guide 3.1.3: transaction id, protocol 0, length, unit.
 */

/** What went wrong with one request, counted per slave under this name. */
export type FaultKind =
  | 'timeout' // nothing came back in time
  | 'crc' // a complete frame whose CRC is wrong (RTU)
  | 'exception' // the slave answered a Modbus exception
  | 'wrongUnit' // a valid frame from another unit id than the one asked
  | 'truncated' // part of a frame, then nothing until the timeout
  | 'badFrame'; // a valid frame that does not answer the request (function, byte count, echo)

export const FAULT_KINDS: readonly FaultKind[] = ['timeout', 'crc', 'exception', 'wrongUnit', 'truncated', 'badFrame'];

/** A request the slave (or the line) failed; `kind` says how. */
export class ModbusFault extends CsError {
  readonly kind: FaultKind;
  readonly modbusCode?: number;
  constructor(kind: FaultKind, message: string, details: Record<string, unknown> & { modbusCode?: number } = {}) {
    super(EdgeErrors.READ_FAILED, message, { ...details, fault: kind });
    this.name = 'ModbusFault';
    this.kind = kind;
    this.modbusCode = details.modbusCode;
  }
}

export const EXCEPTION_NAMES: Record<number, string> = {
  1: 'illegal function', 2: 'illegal data address', 3: 'illegal data value', 4: 'server device failure',
  5: 'acknowledge', 6: 'server device busy', 8: 'memory parity error', 10: 'gateway path unavailable',
  11: 'gateway target device failed to respond',
};

/** One request: a read of a table, or a write (FC 5, 6, 15, 16). */
export type ModbusRequest =
  | { kind: 'read'; table: Table; address: number; count: number }
  | { kind: 'write-coil'; address: number; value: boolean }
  | { kind: 'write-register'; address: number; value: number }
  | { kind: 'write-coils'; address: number; values: boolean[] }
  | { kind: 'write-registers'; address: number; values: number[] };

const READ_FC: Record<Table, number> = { coil: 1, discrete: 2, holding: 3, input: 4 };

export function functionCode(req: ModbusRequest): number {
  switch (req.kind) {
    case 'read': return READ_FC[req.table];
    case 'write-coil': return 5;
    case 'write-register': return 6;
    case 'write-coils': return 15;
    case 'write-registers': return 16;
  }
}

/** The request PDU (function code first). */
export function encodeRequest(req: ModbusRequest): Buffer {
  const fc = functionCode(req);
  switch (req.kind) {
    case 'read': {
      const b = Buffer.alloc(5);
      b.writeUInt8(fc, 0); b.writeUInt16BE(req.address, 1); b.writeUInt16BE(req.count, 3);
      return b;
    }
    case 'write-coil': {
      const b = Buffer.alloc(5);
      b.writeUInt8(fc, 0); b.writeUInt16BE(req.address, 1); b.writeUInt16BE(req.value ? 0xff00 : 0x0000, 3);
      return b;
    }
    case 'write-register': {
      const b = Buffer.alloc(5);
      b.writeUInt8(fc, 0); b.writeUInt16BE(req.address, 1); b.writeUInt16BE(req.value & 0xffff, 3);
      return b;
    }
    case 'write-coils': {
      const n = Math.ceil(req.values.length / 8);
      const b = Buffer.alloc(6 + n);
      b.writeUInt8(fc, 0); b.writeUInt16BE(req.address, 1); b.writeUInt16BE(req.values.length, 3); b.writeUInt8(n, 5);
      req.values.forEach((v, i) => { if (v) b[6 + (i >> 3)] |= 1 << (i & 7); });
      return b;
    }
    case 'write-registers': {
      const b = Buffer.alloc(6 + req.values.length * 2);
      b.writeUInt8(fc, 0); b.writeUInt16BE(req.address, 1); b.writeUInt16BE(req.values.length, 3); b.writeUInt8(req.values.length * 2, 5);
      req.values.forEach((v, i) => b.writeUInt16BE(v & 0xffff, 6 + i * 2));
      return b;
    }
  }
}

/** Length of the normal response PDU to a request. */
export function responseLength(req: ModbusRequest): number {
  if (req.kind === 'read') return req.table === 'coil' || req.table === 'discrete' ? 2 + Math.ceil(req.count / 8) : 2 + req.count * 2;
  return 5;
}

/** Checks a response PDU against its request; returns the data (registers or bits), [] for writes. */
export function decodeResponse(req: ModbusRequest, pdu: Buffer, where: Record<string, unknown>): number[] | boolean[] {
  const fc = functionCode(req);
  if (pdu[0] === (fc | 0x80)) {
    const code = pdu[1];
    throw new ModbusFault('exception', `exception ${code} (${EXCEPTION_NAMES[code] ?? 'unknown'})`, { ...where, modbusCode: code });
  }
  if (pdu[0] !== fc || pdu.length !== responseLength(req)) {
    throw new ModbusFault('badFrame', `reply does not answer FC${fc} (function ${pdu[0]}, ${pdu.length} bytes)`, where);
  }
  if (req.kind === 'read') {
    if (pdu[1] !== pdu.length - 2) throw new ModbusFault('badFrame', `byte count ${pdu[1]} does not match the frame`, where);
    if (req.table === 'coil' || req.table === 'discrete') {
      return Array.from({ length: req.count }, (_, i) => ((pdu[2 + (i >> 3)] >> (i & 7)) & 1) === 1);
    }
    return Array.from({ length: req.count }, (_, i) => pdu.readUInt16BE(2 + i * 2));
  }
  // Writes echo the address (and the value for FC 5 and 6, the quantity for 15 and 16).
  const req5 = encodeRequest(req).subarray(0, 5);
  if (!pdu.subarray(0, 5).equals(req5)) throw new ModbusFault('badFrame', `write echo ${pdu.toString('hex')} differs from ${req5.toString('hex')}`, where);
  return [];
}

const CRC_TABLE = (() => {
  const t = new Uint16Array(256);
  for (let i = 0; i < 256; i++) {
    let c = i;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ 0xa001 : c >>> 1;
    t[i] = c;
  }
  return t;
})();

/** CRC-16/MODBUS (Modbus over Serial Line, appendix B). */
export function crc16(buf: Uint8Array): number {
  let crc = 0xffff;
  for (const b of buf) crc = (crc >>> 8) ^ CRC_TABLE[(crc ^ b) & 0xff];
  return crc;
}

/** unit + PDU + CRC, low byte first. */
export function rtuFrame(unit: number, pdu: Buffer): Buffer {
  const b = Buffer.alloc(pdu.length + 3);
  b[0] = unit;
  pdu.copy(b, 1);
  b.writeUInt16LE(crc16(b.subarray(0, b.length - 2)), b.length - 2);
  return b;
}

/** Whether an RTU frame's last two bytes are its CRC. */
export function rtuCrcOk(frame: Buffer): boolean {
  return frame.length >= 4 && frame.readUInt16LE(frame.length - 2) === crc16(frame.subarray(0, frame.length - 2));
}

/** MBAP header + unit + PDU. */
export function mbapFrame(tid: number, unit: number, pdu: Buffer): Buffer {
  const b = Buffer.alloc(7 + pdu.length);
  b.writeUInt16BE(tid & 0xffff, 0);
  b.writeUInt16BE(0, 2);
  b.writeUInt16BE(pdu.length + 1, 4);
  b[6] = unit;
  pdu.copy(b, 7);
  return b;
}

/**
 * Length of the RTU frame at the start of `buf`, from its own function code and byte count
 * (Modbus over Serial Line 2.5.1); undefined while too short to tell, -1 for an unknown function.
 */
export function rtuFrameLength(buf: Buffer): number | undefined {
  if (buf.length < 2) return undefined;
  const fc = buf[1];
  if (fc & 0x80) return 5;
  if (fc >= 1 && fc <= 4) return buf.length < 3 ? undefined : 5 + buf[2];
  if (fc === 5 || fc === 6 || fc === 15 || fc === 16) return 8;
  return -1;
}

/** Whether `buf` begins with a whole frame whose CRC holds. */
function completesFrame(buf: Buffer): boolean {
  const n = rtuFrameLength(buf);
  return n !== undefined && n > 0 && buf.length >= n && rtuCrcOk(buf.subarray(0, n));
}

/**
 * Collects the reply to one RTU request from the bytes of the line. Frames are cut by their own
 * length, so a late reply of another slave followed by ours is two frames, not one bad one.
 * `push` returns the data once our frame is complete, throws a fault, or returns undefined (wait).
 * After a wrongUnit fault the caller may `skipFrame()` (a late reply it recognises) and go on.
 */
export function rtuReplyCollector(unit: number, req: ModbusRequest, where: Record<string, unknown>, silenceMs = Infinity, now: () => number = Date.now) {
  let buf = Buffer.alloc(0);
  let lastLength = 0;
  let lastByteAt = 0;
  let cutShort = 0;
  return {
    get received() { return buf.length; },
    push(chunk: Buffer): number[] | boolean[] | undefined {
      const t = now();
      // Silence inside a frame ends it (Modbus over Serial Line 2.5.1.1, t1.5, widened for OS and
      // USB latency): an unfinished frame followed by silence was cut short; what follows is a new frame.
      // A stalled event loop also looks like silence: keep the bytes together when they complete a frame.
      if (chunk.length && buf.length && t - lastByteAt > silenceMs && !completesFrame(Buffer.concat([buf, chunk]))) {
        cutShort += 1;
        buf = Buffer.alloc(0);
      }
      if (chunk.length) lastByteAt = t;
      buf = buf.length ? Buffer.concat([buf, chunk]) : Buffer.from(chunk);
      const need = rtuFrameLength(buf);
      // Unknown function byte: nothing tells where the frame ends; the timeout decides.
      if (need === undefined || need < 0 || buf.length < need) return undefined;
      lastLength = need;
      const frame = buf.subarray(0, need);
      if (!rtuCrcOk(frame)) throw new ModbusFault('crc', `CRC error in a ${need}-byte reply`, where);
      if (frame[0] !== unit) throw new ModbusFault('wrongUnit', `reply from unit ${frame[0]}, asked unit ${unit}`, { ...where, replyUnit: frame[0] });
      return decodeResponse(req, Buffer.from(frame.subarray(1, need - 2)), where);
    },
    /** Drops the frame that raised the last fault; the bytes after it are kept. */
    skipFrame(): void {
      buf = buf.subarray(lastLength);
    },
    /** The fault at the deadline: silence, part of a frame, or noise. */
    expire(timeoutMs: number): ModbusFault {
      if (buf.length === 0 && cutShort > 0) return new ModbusFault('truncated', `reply cut short, then silence`, where);
      if (buf.length === 0) return new ModbusFault('timeout', `no reply within ${timeoutMs} ms`, where);
      if (rtuFrameLength(buf) === -1) return new ModbusFault('badFrame', `unusable reply of ${buf.length} bytes (function ${buf[1]})`, { ...where, bytes: buf.length });
      return new ModbusFault('truncated', `reply cut short: ${buf.length} bytes`, { ...where, bytes: buf.length });
    },
  };
}
