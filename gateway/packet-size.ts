/**
 * Closes a connection whose next packet is larger than `max` bytes as soon as its fixed
 * header is read, before the payload is buffered. Aedes 1.2 gives no option for this, so
 * it wraps the remaining-length step of the client's mqtt-packet parser; the test
 * "refuses a packet larger than maxPacketSize" fails if that parser ever changes shape.
 */
import type { Client } from 'aedes';
import { CsError } from '../lib/errors.ts';
import { GatewayErrors } from './errors.ts';

export function guardPacketSize(client: Client, max: number, onTooLarge: (size: number) => void): void {
  interface ParserInternals {
    packet: { length: number };
    _parseLength: () => boolean;
    _emitError: (err: Error) => void;
  }
  const parser = (client as unknown as { _parser?: ParserInternals })._parser;
  if (!parser || typeof parser._parseLength !== 'function' || typeof parser._emitError !== 'function') {
    throw new Error('aedes client parser has an unexpected shape: cannot enforce maxPacketSize');
  }
  const parseLength = parser._parseLength;
  parser._parseLength = function guardedParseLength(this: ParserInternals): boolean {
    const ok = parseLength.call(this);
    if (!ok) return ok;
    const remaining = this.packet.length;
    const size = 1 + (remaining < 128 ? 1 : remaining < 16384 ? 2 : remaining < 2097152 ? 3 : 4) + remaining;
    if (size <= max) return ok;
    onTooLarge(size);
    this._emitError(new CsError(GatewayErrors.PACKET_TOO_LARGE, `packet of ${size} bytes exceeds ${max}`, { size, max }));
    return false;
  };
}
