/** SUBSCRIBE: the identity's ACL (acl.ts); a refused filter gets 0x80 in the SUBACK and the connection stays. */
import type { Client, Subscription } from 'aedes';
import { checkSubscribe } from '../acl.ts';
import type { GatewayContext } from '../context.ts';

export type AuthorizeSubscribe = (client: Client, sub: Subscription, done: (err: Error | null, sub?: Subscription | null) => void) => void;

export function subscribeHandler(ctx: GatewayContext): AuthorizeSubscribe {
  return (client, sub, done) => {
    const identity = ctx.identities.get(client);
    const d = checkSubscribe(identity, sub.topic);
    if (d.allowed) return done(null, sub);
    ctx.deny('subscribe');
    const remote = ctx.remotes.get(client);
    ctx.warn(identity?.username ?? remote ?? 'unknown', { username: identity?.username ?? null, clientId: client.id, remote, filter: sub.topic, reason: d.reason },
      'mqtt subscribe refused');
    done(null, null);
  };
}
