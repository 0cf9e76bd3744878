import { describe, expect, it } from 'vitest';
import {
  crc16, decodeResponse, encodeRequest, mbapFrame, ModbusFault, rtuFrame, rtuReplyCollector, type ModbusRequest,
} from '../../edge/modbus.ts';

/**
 * Byte fixtures (after mqtt-packet's test.js): each request is generated and compared with the
 * frame of the Modbus specifications' examples, and each reply is parsed from bytes.
 */
const hex = (s: string) => Buffer.from(s.replace(/\s+/g, ''), 'hex');

const requests: [string, ModbusRequest, string][] = [
  ['FC3 read 10 holding registers', { kind: 'read', table: 'holding', address: 0, count: 10 }, '01 03 0000 000a c5cd'],
  ['FC6 write one register', { kind: 'write-register', address: 1, value: 3 }, '01 06 0001 0003 980b'],
  ['FC16 write two registers', { kind: 'write-registers', address: 1, values: [0x000a, 0x0102] }, '01 10 0001 0002 04 000a 0102 9230'],
  ['FC5 write a coil on', { kind: 'write-coil', address: 0xac, value: true }, '01 05 00ac ff00 4c1b'],
  // Modbus Application Protocol 6.11: coils 20..29 = CD 01.
  ['FC15 write ten coils', { kind: 'write-coils', address: 0x13, values: [true, false, true, true, false, false, true, true, true, false] }, '01 0f 0013 000a 02 cd01 72cb'],
];

describe('Modbus frames', () => {
  for (const [name, req, frame] of requests) {
    it(`generates the RTU frame of ${name}`, () => {
      expect(rtuFrame(1, encodeRequest(req)).toString('hex')).toBe(hex(frame).toString('hex'));
    });
  }

  it('computes CRC-16/MODBUS low byte first', () => {
    expect(crc16(hex('01 03 0000 000a'))).toBe(0xcdc5);
  });

  it('wraps a PDU in an MBAP header with transaction id, protocol 0, length and unit', () => {
    expect(mbapFrame(0x1234, 7, encodeRequest({ kind: 'read', table: 'input', address: 8, count: 1 })).toString('hex'))
      .toBe('123400000006070400080001');
  });

  it('parses registers and coils from reply PDUs, and mirrors what it generates', () => {
    expect(decodeResponse({ kind: 'read', table: 'holding', address: 0, count: 3 }, hex('03 06 0001 0002 0003'), {})).toEqual([1, 2, 3]);
    const coils = decodeResponse({ kind: 'read', table: 'coil', address: 19, count: 10 }, hex('01 02 cd 01'), {});
    expect(coils).toEqual([true, false, true, true, false, false, true, true, true, false]);
    // The bits read back are the bits FC15 writes.
    expect(encodeRequest({ kind: 'write-coils', address: 19, values: coils as boolean[] }).subarray(6).toString('hex')).toBe('cd01');
    // A write's reply echoes its request.
    expect(decodeResponse(requests[1][1], hex('06 0001 0003'), {})).toEqual([]);
    expect(() => decodeResponse(requests[1][1], hex('06 0001 0004'), {})).toThrow(expect.objectContaining({ kind: 'badFrame' }));
  });
});

describe('RTU reply collector', () => {
  const req: ModbusRequest = { kind: 'read', table: 'holding', address: 0, count: 3 };
  const reply = rtuFrame(1, hex('03 06 0001 0002 0003'));
  const fault = (fn: () => unknown) => { try { fn(); } catch (e) { return e as ModbusFault; } throw new Error('no fault'); };

  it('completes a frame split over several chunks', () => {
    const c = rtuReplyCollector(1, req, {});
    expect(c.push(reply.subarray(0, 4))).toBeUndefined();
    expect(c.push(reply.subarray(4))).toEqual([1, 2, 3]);
  });

  it('names each fault: crc, wrongUnit, exception, truncated, timeout, badFrame', () => {
    const bad = Buffer.from(reply);
    bad[bad.length - 1] ^= 0xff;
    expect(fault(() => rtuReplyCollector(1, req, {}).push(bad)).kind).toBe('crc');
    expect(fault(() => rtuReplyCollector(2, req, {}).push(reply))).toMatchObject({ kind: 'wrongUnit', details: expect.objectContaining({ replyUnit: 1 }) });
    expect(fault(() => rtuReplyCollector(1, req, {}).push(rtuFrame(1, hex('83 02'))))).toMatchObject({ kind: 'exception', modbusCode: 2 });
    const cut = rtuReplyCollector(1, req, {});
    expect(cut.push(reply.subarray(0, 6))).toBeUndefined();
    expect(cut.expire(100).kind).toBe('truncated');
    expect(rtuReplyCollector(1, req, {}).expire(100).kind).toBe('timeout');
    const noise = rtuReplyCollector(1, req, {});
    noise.push(hex('01 47 12 34'));
    expect(noise.expire(100).kind).toBe('badFrame');
  });

  it('skips a late frame of another unit and reads the frame behind it', () => {
    const c = rtuReplyCollector(2, req, {});
    const ours = rtuFrame(2, hex('03 06 0007 0008 0009'));
    expect(fault(() => c.push(Buffer.concat([reply, ours.subarray(0, 3)]))).kind).toBe('wrongUnit');
    c.skipFrame();
    expect(c.push(ours.subarray(3))).toEqual([7, 8, 9]);
  });

  it('treats a frame cut short by silence as truncated, but keeps bytes together that complete a frame', () => {
    let t = 0;
    const c = rtuReplyCollector(1, req, {}, 50, () => t);
    c.push(reply.subarray(0, 5));
    t = 200;
    // A stalled event loop delivered the rest late: it still completes the frame.
    expect(c.push(reply.subarray(5))).toEqual([1, 2, 3]);
    const d = rtuReplyCollector(1, req, {}, 50, () => t);
    d.push(reply.subarray(0, 5));
    t = 400;
    expect(d.push(rtuFrame(9, hex('83 04')).subarray(0, 2))).toBeUndefined();
    t = 401;
    expect(d.expire(100).kind).toBe('truncated');
  });
});
