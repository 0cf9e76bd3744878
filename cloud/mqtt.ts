import { randomBytes } from 'node:crypto';
import { failoverOption } from '../lib/broker-urls.ts';
import mqtt, { type MqttClient } from 'mqtt';
import type { Logger } from '../lib/log.ts';
import { CsError } from '../lib/errors.ts';
import { check } from '../lib/schema.ts';
import { GatewayState } from '../lib/messages.ts';
import { parseTopic, topics } from '../lib/topics.ts';
import { CloudErrors } from './errors.ts';

/**
 * The cloud's MQTT subscriber: readings (`topics.allUp`), edge alarms (`topics.allAlarm`) and
 * gateway birth/death certificates (`topics.allState`), QoS 1. A reading or alarm is acknowledged (PUBACK) only after `onReading` has
 * finished (its batch committed), so a reading the database could not take is not acknowledged and comes back on the
 * next session (with a fixed clientId the session is persistent: clean=false).
 *
 * mqtt.js takes the next packet only after `handleMessage` called back, and then sends the PUBACK:
 * waiting there for the commit would store one reading per batch. So a reading's callback is
 * called at once with a marker error (mqtt.js then sends no PUBACK), and its PUBACK is sent when
 * `onReading` resolved, in the order the PUBLISHes came (MQTT-4.6.0-2), on the same connection
 * only; at most `maxUnacked` readings are in hand; any other message waits for the readings before it (docs/architecture.md#ingest).
 */

export interface MqttOptions {
  url: string;
  /** Further brokers of the cluster, tried in turn when the connection is lost (lib/broker-urls.ts). */
  urls?: string[];
  username: string;
  password: string;
  /** A fixed client id makes the session persistent (clean=false) across cloud restarts. */
  clientId?: string;
  /**
   * Subscribe to these gateways' readings only (a share of the fleet per worker, when several
   * cloud workers split the gateways); every gateway when omitted.
   */
  gateways?: string[];
  /** Subscribe to readings and edge alarms at all (false: publish events only, they come another way). */
  readings?: boolean;
  /** Readings received and not yet acknowledged at most, before the next packet is read; default 1000. */
  maxUnacked?: number;
}

/** Tells mqtt.js "no PUBACK from you": it drops the error and reads the next packet. */
const DEFERRED = new Error('acknowledged after storing');
/** mqtt.js's packet writer (private): how a deferred PUBACK goes out. */
type PacketSender = { _sendPacket(packet: { cmd: 'puback'; messageId: number }, cb?: (err?: Error) => void): void };

export interface SubscriberDeps {
  options: MqttOptions;
  /** A reading (`up/+`) or an edge alarm (`alarm/+`); resolves true when it may be acknowledged. */
  onReading(gateway: string, topic: string, payload: Buffer): Promise<boolean>;
  onState(gateway: string, state: GatewayState | undefined): void;
  /** Command acknowledgements (`cs/v1/{gw}/cmd/ack`), parsed JSON; subscribed only when given. */
  onAck?(gateway: string, ack: Record<string, unknown>): void;
  /** Edge health (`cs/v1/{gw}/health`), parsed JSON; subscribed only when given. */
  onHealth?(gateway: string, health: unknown): void;
  logger: Logger;
}

export interface Subscriber {
  start(): Promise<void>;
  stop(): Promise<void>;
  connected(): boolean;
  /** Publishes (QoS 1) when connected; events for integrations are best effort while offline. */
  publish(topic: string, payload: string): void;
}

export function createSubscriber(deps: SubscriberDeps): Subscriber {
  let client: MqttClient | undefined;
  const log = deps.logger;
  const maxUnacked = deps.options.maxUnacked ?? 1000;
  /** Connections made so far: a PUBACK goes out only on the connection its PUBLISH came on. */
  let connection = 0;
  let unacked = 0;
  let ackTail: Promise<void> = Promise.resolve();

  /** A reading at QoS 1: handled concurrently with the next, acknowledged after it was stored. */
  function deferAck(c: MqttClient, topic: string, payload: Buffer, messageId: number, callback: (err?: Error) => void): void {
    const on = connection;
    unacked++;
    const done = dispatch(topic, payload).then(() => true, (err: Error) => {
      log.error({ err, topic }, 'message handling failed');
      return false;
    }).finally(() => { unacked--; });
    ackTail = ackTail.then(() => done).then((ok) => {
      if (ok && on === connection && c.connected) (c as unknown as PacketSender)._sendPacket({ cmd: 'puback', messageId });
    });
    if (unacked < maxUnacked) callback(DEFERRED);
    else void done.then(() => callback(DEFERRED));
  }

  async function dispatch(topic: string, payload: Buffer): Promise<void> {
    const t = parseTopic(topic);
    if (!t) return;
    if (t.kind === 'up' || t.kind === 'alarm') {
      const ok = await deps.onReading(t.gateway, topic, payload);
      if (!ok) throw new Error(`${t.kind === 'up' ? 'reading' : 'edge alarm'} on ${topic} not stored; left unacknowledged`);
      return;
    }
    if (t.kind === 'health') {
      try {
        deps.onHealth?.(t.gateway, JSON.parse(payload.toString('utf8')));
      } catch {
        log.warn({ gateway: t.gateway }, 'edge health is not JSON');
      }
      return;
    }
    if (t.kind === 'cmd-ack') {
      try {
        const ack = JSON.parse(payload.toString('utf8'));
        if (ack && typeof ack === 'object') deps.onAck?.(t.gateway, ack);
      } catch {
        log.warn({ gateway: t.gateway }, 'command acknowledgement is not JSON');
      }
      return;
    }
    if (t.kind === 'state') {
      if (payload.length === 0) return deps.onState(t.gateway, undefined);
      let body: unknown;
      try {
        body = JSON.parse(payload.toString('utf8'));
      } catch {
        log.warn({ gateway: t.gateway }, 'gateway state is not JSON');
        return;
      }
      const r = check(GatewayState, body, { owned: true });
      if (!r.ok) {
        log.warn({ gateway: t.gateway, problems: r.problems }, 'gateway state invalid');
        return;
      }
      deps.onState(t.gateway, r.value);
    }
  }

  return {
    async start() {
      const { url, username, password } = deps.options;
      const clientId = deps.options.clientId ?? `cs-cloud-${randomBytes(4).toString('hex')}`;
      const c = mqtt.connect(url, {
        ...failoverOption(url, deps.options.urls),
        protocolVersion: 4,
        clientId,
        clean: deps.options.clientId === undefined,
        username,
        password,
        reconnectPeriod: 1000,
        connectTimeout: 10_000,
      });
      // Set before the CONNACK: a persistent session may deliver queued readings at once.
      c.on('connect', () => { connection++; });
      c.handleMessage = (packet, callback) => {
        const payload = Buffer.isBuffer(packet.payload) ? packet.payload : Buffer.from(packet.payload);
        const kind = parseTopic(packet.topic)?.kind;
        if (packet.qos === 1 && packet.messageId !== undefined && kind === 'up') {
          return deferAck(c, packet.topic, payload, packet.messageId, callback);
        }
        // Anything else (an edge alarm too) waits for the readings before it: their order is kept.
        ackTail.then(() => dispatch(packet.topic, payload)).then(() => callback(), (err: Error) => {
          log.error({ err, topic: packet.topic }, 'message handling failed');
          callback(err);
        });
      };
      try {
        await new Promise<void>((resolve, reject) => {
          const fail = (err?: Error) => { cleanup(); reject(err ?? new Error('connection closed')); };
          const ok = () => { cleanup(); resolve(); };
          const cleanup = () => { c.off('connect', ok); c.off('error', fail); c.off('close', fail); };
          c.once('connect', ok);
          c.once('error', fail);
          c.once('close', fail);
        });
      } catch (err) {
        await c.endAsync(true).catch(() => undefined);
        throw new CsError(CloudErrors.MQTT_CONNECT, `cannot connect to MQTT broker ${url}: ${(err as Error).message}`, { url });
      }
      client = c;
      c.on('error', (err) => log.warn({ err }, 'mqtt error'));
      c.on('offline', () => log.warn('mqtt offline'));
      c.on('connect', () => log.info('mqtt reconnected'));
      const subs: Record<string, { qos: 1 }> = { [topics.allState]: { qos: 1 } };
      if (deps.onAck) subs[topics.allCmdAck] = { qos: 1 };
      if (deps.onHealth) subs[topics.allHealth] = { qos: 1 };
      if (deps.options.readings !== false) {
        // Edge alarms travel with the readings: same gateways, same acknowledgement after storing.
        if (deps.options.gateways) {
          for (const gw of deps.options.gateways) {
            subs[`${topics.namespace(gw)}up/+`] = { qos: 1 };
            subs[`${topics.namespace(gw)}alarm/+`] = { qos: 1 };
          }
        } else {
          subs[topics.allUp] = { qos: 1 };
          subs[topics.allAlarm] = { qos: 1 };
        }
      }
      // One topic per SUBSCRIBE: a persistent session on brokers sharing Redis gets no SUBACK for a SUBSCRIBE
      // of several topics (aedes-persistence's broadcast waits for the first topic only; seen with aedes 1.2).
      const granted = [];
      for (const [topic, o] of Object.entries(subs)) granted.push(...await c.subscribeAsync({ [topic]: o }));
      const refused = granted.filter((g) => g.qos === 128);
      if (refused.length) log.error({ refused: refused.map((g) => g.topic) }, 'subscriptions refused by the broker');
      log.info({ url, clientId }, 'subscribed to readings, edge alarms and gateway states');
    },
    async stop() {
      const c = client;
      client = undefined;
      if (c) await c.endAsync();
    },
    connected: () => client?.connected ?? false,
    publish(topic, payload) {
      const c = client;
      if (!c?.connected) return;
      c.publish(topic, payload, { qos: 1 }, (err) => { if (err) log.warn({ err, topic }, 'event publish failed'); });
    },
  };
}
