/**
 * Shared state for several broker processes serving one city (docs/targets.md#lessons-from-the-systems-we-mean-to-beat and docs/architecture.md#platform-notes):
 * aedes-persistence-redis (sessions, subscriptions, queued QoS 1 messages, retained
 * messages, Wills) AND mqemitter-redis (routing between brokers) on one Redis. Either
 * alone is not enough (moscajs/aedes #531).
 *
 * Both are isolated by `keyPrefix`: the persistence through ioredis' key prefix, the
 * emitter through a topic prefix on its pub/sub channels (Redis pub/sub ignores key
 * prefixes and databases), so several cities, or test runs, can share one Redis.
 *
 * `close()` closes both: Aedes' close() leaves the persistence's Redis connection open.
 */
import createRedisPersistence from 'aedes-persistence-redis';
import hyperid from 'hyperid';
import mqemitterRedis from 'mqemitter-redis';
import type { Logger } from '../lib/log.ts';
import { encodeRouted } from './mq-encode.ts';
import { DEFAULT_KEY_PREFIX, KEY_PREFIX_PATTERN } from './redis-defaults.ts';

export interface RedisClusterOptions {
  /** `redis://host:port/db`. */
  url: string;
  /** Prefix of every key and pub/sub channel of this city; default `cs:`. */
  keyPrefix?: string;
}

export interface ClusterBackend {
  /** For Aedes.createBroker({ persistence, mq }). */
  persistence: unknown;
  mq: unknown;
  /** Waits for the emitter and the persistence to be connected. */
  ready(): Promise<void>;
  /** Closes the persistence's connection and the emitter's two connections (idempotent). */
  close(): Promise<void>;
}

export { DEFAULT_KEY_PREFIX, KEY_PREFIX_PATTERN };

interface EmitterLike {
  close(cb: () => void): void;
  emit(packet: { topic: string }, done?: (err?: Error) => void): void;
  closed?: boolean;
  _pubSubPrefix: string;
  _onError: (err?: Error) => void;
  pubConn: { publish(channel: string, message: Buffer): Promise<unknown>; defineCommand(name: string, o: { numberOfKeys: number; lua: string }): void };
  state: { once(ev: string, fn: (...a: unknown[]) => void): void; on(ev: string, fn: (...a: unknown[]) => void): void };
  subConn: { status: string };
}
interface PersistenceLike { destroy(): Promise<void> }

export function buildClusterBackend(opts: RedisClusterOptions, log: Logger): ClusterBackend {
  const keyPrefix = opts.keyPrefix ?? DEFAULT_KEY_PREFIX;
  if (!new RegExp(KEY_PREFIX_PATTERN).test(keyPrefix)) throw new RangeError(`redis keyPrefix ${JSON.stringify(keyPrefix)} must match ${KEY_PREFIX_PATTERN}`);
  const ioredisOpts = { lazyConnect: false, maxRetriesPerRequest: null as null };
  const persistence = createRedisPersistence({ ...parseUrl(opts.url), ...ioredisOpts, keyPrefix }) as unknown as PersistenceLike;
  // The channel prefix ends a topic level of its own, so `#` and `+` filters keep working.
  const Prefixed = (mqemitterRedis as unknown as { MQEmitterRedisPrefix: new (prefix: string, o: object) => EmitterLike }).MQEmitterRedisPrefix;
  const mq = new Prefixed(`${keyPrefix}mq/`, { connectionString: opts.url });
  mq.state.on('error', (err) => log.error({ err }, 'redis emitter error'));
  routeFast(mq);
  let closing: Promise<void> | undefined;

  return {
    persistence,
    mq,
    async ready() {
      const connected = (c: unknown) => (c as { status: string }).status === 'ready';
      if (connected(mq.subConn) && connected(mq.pubConn)) return;
      await new Promise<void>((resolve, reject) => {
        let n = (connected(mq.subConn) ? 0 : 1) + (connected(mq.pubConn) ? 0 : 1);
        const timer = setTimeout(() => reject(new Error(`redis at ${opts.url} not reachable`)), 10_000);
        const one = () => { if (--n === 0) { clearTimeout(timer); resolve(); } };
        if (!connected(mq.subConn)) mq.state.once('subConnect', one);
        if (!connected(mq.pubConn)) mq.state.once('pubConnect', one);
      });
    },
    close() {
      closing ??= (async () => {
        await persistence.destroy().catch((err: Error) => log.warn({ err }, 'redis persistence did not close cleanly'));
        await new Promise<void>((resolve) => mq.close(() => resolve()));
      })();
      return closing;
    },
  };
}

/** PUBLISH of each (channel, message) pair of ARGV, in order. */
const PUBLISH_ALL = `for i = 1, #ARGV, 2 do redis.call('PUBLISH', ARGV[i], ARGV[i + 1]) end
return #ARGV / 2`;
/** Packets per script call at most. */
const MAX_ROUTED = 500;

/**
 * MQEmitterRedisPrefix's emit (mqemitter-redis 7) with the packet encoded by encodeRouted, the same
 * bytes as its msgpack-lite encode (the other brokers decode them unchanged), and the PUBLISHes of one
 * turn of the event loop sent in one script call (in order; each packet's callback after it returned),
 * not a command each; a packet the fast encoder does not cover goes the library's way.
 */
function routeFast(mq: EmitterLike): void {
  const library = mq.emit.bind(mq);
  const id = hyperid();
  const conn = mq.pubConn as EmitterLike['pubConn'] & { csPublishAll(...args: (string | Buffer)[]): Promise<unknown> };
  conn.defineCommand('csPublishAll', { numberOfKeys: 0, lua: PUBLISH_ALL });
  let args: (string | Buffer)[] = [];
  let callbacks: ((err?: Error) => void)[] = [];
  let scheduled = false;
  const flush = (): void => {
    scheduled = false;
    while (callbacks.length) {
      const n = Math.min(callbacks.length, MAX_ROUTED);
      const batch = args.slice(0, n * 2);
      const cbs = callbacks.slice(0, n);
      args = args.slice(n * 2);
      callbacks = callbacks.slice(n);
      conn.csPublishAll(...batch).then(() => { for (const cb of cbs) cb(); }, (err: Error) => { for (const cb of cbs) cb(err); });
    }
  };
  mq.emit = (packet, done) => {
    const cb = done ?? mq._onError;
    if (mq.closed) return cb(new Error('mqemitter-redis is closed'));
    const channel = mq._pubSubPrefix + packet.topic;
    const bytes = encodeRouted(id(), { ...packet, topic: channel });
    if (!bytes) return library(packet, done);
    args.push(channel, bytes);
    callbacks.push(cb);
    if (!scheduled) {
      scheduled = true;
      setImmediate(flush);
    }
  };
}

/** ioredis options of a `redis://[user:pass@]host:port/db` URL (the persistence takes options, not a URL). */
function parseUrl(url: string): { host: string; port: number; db: number; username?: string; password?: string } {
  const u = new URL(url);
  if (u.protocol !== 'redis:') throw new RangeError(`redis url must start with redis://, got ${url}`);
  const db = u.pathname.length > 1 ? Number(u.pathname.slice(1)) : 0;
  return {
    host: u.hostname || '127.0.0.1',
    port: u.port ? Number(u.port) : 6379,
    db: Number.isInteger(db) ? db : 0,
    ...(u.username ? { username: decodeURIComponent(u.username) } : {}),
    ...(u.password ? { password: decodeURIComponent(u.password) } : {}),
  };
}
