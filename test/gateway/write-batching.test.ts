/**
 * Fewer syscalls (issue 12): what the broker writes to one socket in one tick leaves in one
 * write. Counted on the server side, on a real broker: every call of the socket's _write or
 * _writev is one write(2) or writev(2) on the connection.
 */
import type { Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { CredentialStore } from '../../gateway/credentials.ts';
import { buildGateway, type Gateway } from '../../gateway/gateway.ts';
import { connectPacket, publishPacket, rawMqtt, type RawMqtt } from './helpers.ts';

let gateway: Gateway | undefined;
let client: RawMqtt | undefined;
afterEach(async () => {
  client?.destroy();
  await gateway?.stop();
  gateway = client = undefined;
});

/** Counts the writes that reach the kernel for this socket from now on. */
function countWrites(conn: Socket): { writes: number } {
  const count = { writes: 0 };
  const s = conn as Socket & { _write: (...a: unknown[]) => void; _writev: (...a: unknown[]) => void };
  const write = s._write.bind(s);
  const writev = s._writev.bind(s);
  s._write = (...a) => { count.writes++; write(...a); };
  s._writev = (...a) => { count.writes++; writev(...a); };
  return count;
}

describe('write batching', () => {
  it.each([
    ['acknowledged at once', undefined],
    ['each held by an ingest hook that settles on its own turn of the event loop', () => new Promise<void>((r) => setImmediate(r))],
  ])('sends the PUBACKs of 50 QoS 1 publishes from one TCP segment, %s, in a few writes, not 50', async (_, onPublishAuthorized) => {
    const store = CredentialStore.memory();
    const { password } = store.create('gw1', 'gateway');
    gateway = buildGateway({ host: '127.0.0.1', port: 0, credentials: store, ...(onPublishAuthorized ? { onPublishAuthorized } : {}) });
    const { port } = await gateway.start();
    client = await rawMqtt(port);
    client.send(connectPacket('c1', 'gw1', password));
    expect(await client.next('connack')).toMatchObject({ returnCode: 0 });
    const conn = (gateway.broker as unknown as { clients: Record<string, { conn: Socket }> }).clients['gw1:c1']!.conn;
    const count = countWrites(conn);
    const n = 50;
    client.send(Buffer.concat(Array.from({ length: n }, (_, i) => publishPacket('cs/v1/gw1/up/d1', `{"i":${i}}`, 1, i + 1))));
    const ids = [];
    for (let i = 0; i < n; i++) ids.push((await client.next('puback')).messageId);
    expect(ids).toEqual(Array.from({ length: n }, (_, i) => i + 1));
    expect(count.writes).toBeLessThanOrEqual(5);
  });
});
