/**
 * Closes a connection whose next packet is larger than `max` bytes as soon as its fixed
 * header is read, before the payload is buffered. Aedes 1.2 gives no option for this, so
 * it wraps the remaining-length step of the client's mqtt-packet parser; the test
 * "refuses a packet larger than maxPacketSize" fails if that parser ever changes shape.
 * One wrapper per gateway, shared by every client's parser (it finds the client through
 * `parser.client`, set by Aedes): no closure per connection (docs/architecture.md#broker-memory).
 */
import type { Client } from 'aedes';
import { CsError } from '../lib/errors.ts';
import { GatewayErrors } from './errors.ts';

interface ParserInternals {
  packet: { length: number };
  client?: Client;
  _parseLength: () => boolean;
  _emitError: (err: Error) => void;
}

/** Returns the function that guards one client's parser; `onTooLarge` runs before the connection closes. */
export function packetSizeGuard(max: number, onTooLarge: (client: Client | undefined, size: number) => void): (client: Client) => void {
  let parseLength: (() => boolean) | undefined;
  function guardedParseLength(this: ParserInternals): boolean {
    const ok = parseLength!.call(this);
    if (!ok) return ok;
    const remaining = this.packet.length;
    const size = 1 + (remaining < 128 ? 1 : remaining < 16384 ? 2 : remaining < 2097152 ? 3 : 4) + remaining;
    if (size <= max) return ok;
    onTooLarge(this.client, size);
    this._emitError(new CsError(GatewayErrors.PACKET_TOO_LARGE, `packet of ${size} bytes exceeds ${max}`, { size, max }));
    return false;
  }
  return (client) => {
    const parser = (client as unknown as { _parser?: ParserInternals })._parser;
    if (!parser || typeof parser._parseLength !== 'function' || typeof parser._emitError !== 'function'
      || (parseLength !== undefined && parser._parseLength !== parseLength)) {
      throw new Error('aedes client parser has an unexpected shape: cannot enforce maxPacketSize');
    }
    parseLength ??= parser._parseLength;
    parser._parseLength = guardedParseLength;
  };
}
