/** Delivery: a message reaches a client only on a topic its ACL lets it subscribe to (acl.ts canReceive). */
import type { AedesPublishPacket, Client } from 'aedes';
import { canReceive } from '../acl.ts';
import type { GatewayContext } from '../context.ts';

export type AuthorizeForward = (client: Client, packet: AedesPublishPacket) => AedesPublishPacket | null;

export function forwardHandler(ctx: GatewayContext): AuthorizeForward {
  return (client, packet) => {
    if (canReceive(ctx.identities.get(client), packet.topic)) return packet;
    ctx.deny('forward');
    ctx.log.debug({ clientId: client.id, topic: packet.topic }, 'mqtt delivery withheld');
    return null;
  };
}
