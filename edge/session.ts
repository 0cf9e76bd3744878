import { connect, type IClientOptions, type MqttClient } from 'mqtt';
import { CsError } from '../lib/errors.ts';
import type { Logger } from '../lib/log.ts';
import type { CommandAck, GatewayState } from '../lib/messages.ts';
import { topics } from '../lib/topics.ts';
import { failoverOption } from '../lib/broker-urls.ts';
import type { PollMode } from '../lib/vocabulary.ts';
import type { EdgeMqtt } from './config.ts';
import { EdgeErrors } from './errors.ts';
import { withinMs } from './pump.ts';

/**
 * The edge's MQTT session (docs/architecture.md, topics): a persistent session (CleanSession 0) under
 * the gateway id; a retained birth on `cs/v1/{gw}/state` at every connection, a retained Will with the
 * same bdSeq (each CONNECT attempt is a new birth/death pair); commands on `cs/v1/{gw}/cmd`, their
 * acknowledgements on `cs/v1/{gw}/cmd/ack`; a clean offline state and DISCONNECT on close().
 */

/** How long close() waits for outstanding PUBACKs and the offline state before it forces the client closed. */
export const STOP_FLUSH_MS = 2000;

export interface MqttSessionOptions {
  gateway: string;
  mqtt: EdgeMqtt;
  /** Reconnect interval; default 1000 ms. */
  reconnectMs?: number;
  /** The next birth/death sequence number (persisted, seq.ts). */
  nextBdSeq: () => number;
  logger: Logger;
  now: () => number;
  /** The mode the birth and the offline state carry. */
  mode: () => PollMode;
  /** The revision and digest of the devices polled, for the birth (the cloud resends set-devices when they differ from its registry's). */
  config?: () => { revision: number; digest: string };
  /** Readings waiting in the outbox, for the logs. */
  backlog: () => number | undefined;
  /** A connection is up (after the command subscription and the birth are sent). */
  onConnect: () => void;
  /** A command payload; the acknowledgement to publish, if any. */
  onCommand: (payload: Buffer) => Promise<CommandAck | undefined>;
}

export interface MqttSession {
  readonly client: MqttClient;
  /** The first attempt's outcome: resolves once connected or the broker is unreachable (the client keeps trying); rejects on CONNACK 4 or 5. */
  readonly ready: Promise<void>;
  /** Waits (bounded) for `drained`, publishes the offline state, and ends the client. */
  close(drained: (timeoutMs: number) => Promise<boolean>): Promise<void>;
}

export function openMqttSession(o: MqttSessionOptions): MqttSession {
  const gw = o.gateway;
  const log = o.logger;
  const stateTopic = topics.state(gw);
  const cmdTopic = topics.cmd(gw);
  const iso = () => new Date(o.now()).toISOString();
  const willPayload = (n: number) => JSON.stringify({ online: false, bdSeq: n, ts: iso() } satisfies GatewayState);

  let bdSeq = o.nextBdSeq();
  const options: IClientOptions = {
    clientId: gw,
    clean: false,
    protocolVersion: 4,
    username: o.mqtt.username,
    password: o.mqtt.password,
    keepalive: o.mqtt.keepaliveS ?? 30,
    reconnectPeriod: o.reconnectMs ?? 1000,
    connectTimeout: 10_000,
    reconnectOnConnackError: true,
    will: { topic: stateTopic, payload: Buffer.from(willPayload(bdSeq)), qos: 1, retain: true },
  };
  // Several brokers: mqtt.js takes the next of `servers` at each (re)connection, so a lost broker's gateways move to another.
  const mq = connect(o.mqtt.url, { ...options, ...failoverOption(o.mqtt.url, o.mqtt.urls) });

  function onConnect(): void {
    log.info({ bdSeq, backlog: o.backlog() }, 'mqtt connected');
    // Subscribe before the birth, so that whoever reacts to the birth finds us listening (Sparkplug order).
    mq.subscribe(cmdTopic, { qos: 1 }, (err) => {
      if (err) log.error({ err: err.message }, 'subscribe to commands failed');
      const birth: GatewayState = { online: true, bdSeq, ts: iso(), mode: o.mode(), ...(o.config ? { config: o.config() } : {}) };
      mq.publish(stateTopic, JSON.stringify(birth), { qos: 1, retain: true }, (e) => {
        if (e) log.warn({ err: e.message }, 'birth not acknowledged');
      });
    });
    o.onConnect();
  }

  async function onCommand(payload: Buffer): Promise<void> {
    const ack = await o.onCommand(payload);
    if (!ack) return;
    log.info({ id: ack.id, outcome: ack.outcome }, 'command acknowledged');
    await mq.publishAsync(topics.cmdAck(gw), JSON.stringify(ack satisfies CommandAck), { qos: 1 });
  }

  mq.on('reconnect', () => {
    // Each attempt is a new birth/death pair: the Will sent with this CONNECT carries the new bdSeq.
    bdSeq = o.nextBdSeq();
    if (mq.options.will) mq.options.will.payload = Buffer.from(willPayload(bdSeq));
  });
  mq.on('connect', onConnect);
  mq.on('message', (topic, payload) => {
    if (topic !== cmdTopic) return;
    onCommand(payload).catch((err) => log.warn({ err: (err as Error).message }, 'command acknowledgement not published'));
  });
  mq.on('offline', () => log.warn({ backlog: o.backlog() }, 'mqtt offline; readings wait in the outbox'));
  // Warn once per outage, then quietly: a broker down for an hour must not flood the log.
  let quiet = false;
  mq.on('connect', () => { quiet = false; });
  mq.on('error', (err) => {
    if (quiet) log.debug({ err: err.message }, 'mqtt error');
    else log.warn({ err: err.message }, 'mqtt error');
    quiet = true;
  });

  const ready = new Promise<void>((resolve, reject) => {
    const settle = () => {
      mq.off('connect', onFirst);
      mq.off('error', onError);
      mq.off('close', onClose);
    };
    const onFirst = () => { settle(); resolve(); };
    const onError = (err: Error & { code?: number }) => {
      // CONNACK 4 (bad user name or password) and 5 (not authorised): a config fault, fail loud.
      if (err.code === 4 || err.code === 5) {
        settle();
        reject(new CsError(EdgeErrors.MQTT_AUTH, `broker ${o.mqtt.url} refused gateway ${gw}: ${err.message}`, { code: err.code }));
      }
    };
    // The broker is not there yet: run anyway; readings wait in the outbox and the client keeps trying.
    const onClose = () => { settle(); log.warn({ url: o.mqtt.url }, 'mqtt broker not reachable; retrying'); resolve(); };
    mq.on('connect', onFirst);
    mq.on('error', onError);
    mq.on('close', onClose);
  });

  async function close(drained: (timeoutMs: number) => Promise<boolean>): Promise<void> {
    if (mq.connected) {
      // Deliver what is in flight and say goodbye: a clean DISCONNECT discards the Will.
      // Both waits end early if the connection drops meanwhile. What is not acknowledged stays in the outbox.
      let onClosed!: () => void;
      const closed = new Promise<void>((resolve) => { onClosed = resolve; mq.once('close', onClosed); });
      await withinMs(Promise.race([drained(STOP_FLUSH_MS), closed]), STOP_FLUSH_MS);
      if (mq.connected) {
        const offline: GatewayState = { online: false, bdSeq, ts: iso(), mode: o.mode() };
        await withinMs(Promise.race([mq.publishAsync(stateTopic, JSON.stringify(offline), { qos: 1, retain: true }).catch(() => undefined), closed]), STOP_FLUSH_MS);
      }
      mq.off('close', onClosed);
    }
    // end(false) sends DISCONNECT once nothing is in flight; if PUBACKs never come, drop the socket
    // (the broker then publishes the Will, which says offline too).
    const ended = await withinMs(mq.endAsync(!mq.connected).then(() => true, () => true), STOP_FLUSH_MS);
    if (!ended) {
      log.warn('mqtt did not end cleanly; closing its socket');
      mq.stream?.destroy();
    }
  }

  return { client: mq, ready, close };
}

