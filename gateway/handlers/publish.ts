/**
 * PUBLISH (and Wills): Aedes' authorizePublish hook as a pipeline of named steps.
 *
 * - authorize: the identity's ACL (acl.ts); a refused publish is never acknowledged: the
 *   connection is closed (MQTT-3.3.5-2 allows an ack or a close; README says why we close);
 * - count: messages and bytes;
 * - pace: over its rate a client's packet is held (Aedes reads that client's next packets
 *   only after), i.e. TCP back-pressure on that client alone;
 * - handOff: the onPublishAuthorized hook runs before the PUBACK (docs/architecture.md#platform-notes).
 */
import type { Client, PublishPacket } from 'aedes';
import { CsError } from '../../lib/errors.ts';
import { canPublish, checkPublish } from '../acl.ts';
import type { Identity } from '../credentials.ts';
import { GatewayErrors } from '../errors.ts';
import type { GatewayContext } from '../context.ts';
import { tokenBucket, type TokenBucket } from '../limits.ts';
import { runSteps, type Step } from './steps.ts';

interface PublishAttempt {
  client: Client | null;
  packet: PublishPacket;
  identity: Identity | undefined;
  payload?: Buffer;
}

export type AuthorizePublish = (client: Client | null, packet: PublishPacket, done: (err?: Error | null) => void) => void;

export function publishHandler(ctx: GatewayContext, publishBuckets: WeakMap<Client, TokenBucket>): AuthorizePublish {
  const { log, metrics, store } = ctx;
  const hook = ctx.opts.onPublishAuthorized;

  const steps: Step<PublishAttempt>[] = [authorize, count, pace, handOff];

  function authorize(a: PublishAttempt): void {
    if (canPublish(a.identity, a.packet.topic)) return;
    const d = checkPublish(a.identity, a.packet.topic);
    ctx.deny('publish');
    const remote = a.client ? ctx.remotes.get(a.client) : undefined;
    ctx.warn(a.identity?.username ?? remote ?? 'unknown', {
      username: a.identity?.username ?? null, clientId: a.client?.id ?? (a.packet as { clientId?: string }).clientId,
      remote, topic: a.packet.topic, code: GatewayErrors.PUBLISH_DENIED, reason: d.reason,
    }, 'mqtt publish refused: closing the connection');
    throw new CsError(GatewayErrors.PUBLISH_DENIED, `publish refused: ${d.reason}`, { topic: a.packet.topic });
  }

  function count(a: PublishAttempt): void {
    ctx.counters.messages++;
    a.payload = Buffer.isBuffer(a.packet.payload) ? a.packet.payload : Buffer.from(a.packet.payload);
    metrics?.messages.inc({ qos: String(a.packet.qos) });
    metrics?.bytesIn.inc(a.payload.length);
  }

  /** A client's packets still held by pace(): later ones wait behind them, so its order is kept. */
  const held = new WeakMap<Client, Promise<void>>();

  function pace(a: PublishAttempt): void | Promise<void> {
    const client = a.client;
    if (!client) return;
    let bucket = publishBuckets.get(client);
    if (!bucket && ctx.limits.publishesPerSecond) {
      // Made at the first PUBLISH, full, as one made at CONNECT would be by then: idle connections stay small.
      bucket = tokenBucket({ ratePerSecond: ctx.limits.publishesPerSecond, burst: ctx.limits.publishBurst, now: ctx.now });
      publishBuckets.set(client, bucket);
    }
    const wait = bucket ? bucket.take() : 0;
    const before = held.get(client);
    // Aedes handles a read chunk's packets at once, and a late timer lets the next chunk in
    // first: a packet due now still goes after the ones held before it.
    if (wait <= 0 && !before) return;
    let mine = before;
    if (wait > 0) {
      metrics?.publishDelayed.inc();
      const timer = sleep(wait);
      mine = before ? Promise.all([before, timer]).then(() => undefined) : timer;
    }
    const tail = mine!;
    held.set(client, tail);
    void tail.then(() => {
      if (held.get(client) === tail) held.delete(client);
    });
    return tail;
  }

  /** On stop() the timer is cleared and the packet stays unanswered, like the connection. */
  function sleep(ms: number): Promise<void> {
    return new Promise<void>((resolve) => {
      const timer = setTimeout(() => {
        ctx.timers.delete(timer);
        resolve();
      }, ms);
      ctx.timers.add(timer);
    });
  }

  function handOff(a: PublishAttempt): void | Promise<void> {
    if (!hook) return;
    const identity = a.identity!;
    let pending: Promise<void>;
    try {
      pending = hook(identity, a.packet.topic, a.payload!);
    } catch (err) {
      pending = Promise.reject(err);
    }
    return pending.catch((err: Error) => {
      log.error({ err, username: identity.username, topic: a.packet.topic }, 'publish refused by the ingest hook');
      throw new CsError(GatewayErrors.INGEST_FAILED, `ingest failed: ${err?.message ?? String(err)}`, { topic: a.packet.topic });
    });
  }

  /** A Will persisted by an earlier connection, published with no client: judged by its owner's current identity. */
  function identityOfStoredWill(packet: PublishPacket): Identity | undefined {
    const clientId = (packet as { clientId?: string }).clientId;
    if (typeof clientId !== 'string' || !clientId.includes(':')) return undefined;
    return store.get(clientId.slice(0, clientId.indexOf(':')));
  }

  return (client, packet, done) => {
    const identity = client ? ctx.identities.get(client) : identityOfStoredWill(packet);
    runSteps(steps, { client, packet, identity }, done);
  };
}
