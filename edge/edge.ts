import { connect, type IClientOptions, type MqttClient } from 'mqtt';
import { ConfigError } from '../lib/config.ts';
import { CsError } from '../lib/errors.ts';
import { silentLogger, type Logger } from '../lib/log.ts';
import type { CommandAck, GatewayState, Reading } from '../lib/messages.ts';
import { topics } from '../lib/topics.ts';
import type { Profile } from '../devices/profile.ts';
import { createCommandRouter, type CommandHandler, type CommandRouter } from './commands.ts';
import { crossCheckEdgeConfig, type EdgeConfig } from './config.ts';
import { EdgeErrors } from './errors.ts';
import { createMemoryOutbox, type Outbox } from './outbox.ts';
import { planReads } from './plan.ts';
import { createBusPoller, type BusPoller, type DeviceReading, type PolledDevice } from './poller.ts';
import { openSeqStore, type SeqStore } from './seq.ts';
import { createTcpTransport, type BusTransport } from './transport.ts';

/**
 * The edge gateway: polls its Modbus buses and publishes readings to the broker.
 *
 * - one transport (one connection) per bus, one request at a time on it, buses in parallel;
 * - readings numbered by a per-gateway `seq` that survives restarts (seq.ts), held in the outbox
 *   until their PUBACK, published QoS 1 on `cs/v1/{gw}/up/{device}`;
 * - a retained birth on `cs/v1/{gw}/state` at every connection, a retained Will with the same
 *   bdSeq, a clean offline state on stop();
 * - commands on `cs/v1/{gw}/cmd`, acknowledged on `cs/v1/{gw}/cmd/ack`.
 *
 * The factory stores its dependencies; start() creates and stop() releases every socket and timer.
 */

export interface EdgeOptions {
  config: EdgeConfig;
  profiles: Map<string, Profile>;
  /** Where the gateway keeps its state (seq.json). */
  dataDir: string;
  logger?: Logger;
  now?: () => number;
  /** Default: in memory. The durable outbox of a later issue plugs in here. */
  outbox?: Outbox;
  /** Reconnect interval of the MQTT client; default 1000 ms. */
  reconnectMs?: number;
}

export interface EdgeStats {
  /** The last sequence number handed out. */
  seq: number;
  /** Readings acknowledged by the broker since start(). */
  published: number;
  /** Device polls that failed since start(). */
  pollErrors: number;
  /** Device polls per bus since start(). */
  buses: Record<string, { ok: number; errors: number }>;
}

export interface Edge {
  start(): Promise<void>;
  stop(): Promise<void>;
  /** One full pass over every device; resolves when each reading is published (failed devices are skipped). */
  pollNow(): Promise<void>;
  stats(): EdgeStats;
}

/** How long stop() waits for outstanding PUBACKs and the offline state before it forces the client closed. */
const STOP_FLUSH_MS = 2000;

export function buildEdge(opts: EdgeOptions): Edge {
  const { config } = opts;
  const gw = config.gateway;
  const now = opts.now ?? Date.now;
  const base = opts.logger ?? silentLogger();
  const log = base.bindings().gateway === gw ? base : base.child({ gateway: gw });

  let state: 'idle' | 'running' | 'stopped' = 'idle';
  let seq: SeqStore | undefined;
  let outbox: Outbox | undefined;
  let client: MqttClient | undefined;
  let router: CommandRouter | undefined;
  let bdSeq = 0;
  let published = 0;
  const transports: BusTransport[] = [];
  const pollers = new Map<string, BusPoller>();
  const inflight = new Set<Promise<void>>();

  const iso = () => new Date(now()).toISOString();
  const stateTopic = topics.state(gw);
  const cmdTopic = topics.cmd(gw);

  function willPayload(n: number): string {
    return JSON.stringify({ online: false, bdSeq: n, ts: iso() } satisfies GatewayState);
  }

  async function publishReading(r: DeviceReading): Promise<void> {
    if (!seq || !outbox || !client) throw new CsError(EdgeErrors.STATE, 'edge is not running');
    const reading: Reading = { seq: seq.next(), ts: iso(), device: r.device, values: r.values, quality: r.quality, historical: false };
    const entry = { seq: reading.seq, topic: topics.up(gw, r.device), payload: JSON.stringify(reading) };
    const box = outbox;
    const mq = client;
    const task = (async () => {
      await box.append(entry);
      try {
        await mq.publishAsync(entry.topic, entry.payload, { qos: 1 });
      } catch (err) {
        throw new CsError(EdgeErrors.MQTT_PUBLISH, `reading ${entry.seq} of ${r.device} not acknowledged: ${(err as Error).message}`, { seq: entry.seq });
      }
      await box.ack(entry.seq);
      published += 1;
    })();
    inflight.add(task);
    try {
      await task;
    } finally {
      inflight.delete(task);
    }
  }

  async function pollNow(): Promise<void> {
    if (state !== 'running') throw new CsError(EdgeErrors.STATE, `edge ${gw} is not running`);
    await Promise.all([...pollers.values()].map((p) => p.pollAll()));
  }

  const handlers: Record<string, CommandHandler> = {
    'report-now': async () => {
      await pollNow();
    },
  };

  async function onCommand(payload: Buffer): Promise<void> {
    const ack = await router!.handle(payload);
    if (!ack || !client) return;
    log.info({ id: ack.id, outcome: ack.outcome }, 'command acknowledged');
    await client.publishAsync(topics.cmdAck(gw), JSON.stringify(ack satisfies CommandAck), { qos: 1 });
  }

  function onConnect(mq: MqttClient): void {
    log.info({ bdSeq }, 'mqtt connected');
    // Subscribe before the birth, so that whoever reacts to the birth finds us listening (Sparkplug order).
    mq.subscribe(cmdTopic, { qos: 1 }, (err) => {
      if (err) log.error({ err: err.message }, 'subscribe to commands failed');
      const birth: GatewayState = { online: true, bdSeq, ts: iso() };
      mq.publish(stateTopic, JSON.stringify(birth), { qos: 1, retain: true }, (e) => {
        if (e) log.warn({ err: e.message }, 'birth not acknowledged');
      });
    });
  }

  /** Creates the client (it connects in the background) and a promise of the first attempt's outcome. */
  function connectMqtt(): { mq: MqttClient; ready: Promise<void> } {
    bdSeq = seq!.nextBdSeq();
    const options: IClientOptions = {
      clientId: gw,
      clean: false,
      protocolVersion: 4,
      username: config.mqtt.username,
      password: config.mqtt.password,
      keepalive: config.mqtt.keepaliveS ?? 30,
      reconnectPeriod: opts.reconnectMs ?? 1000,
      connectTimeout: 10_000,
      reconnectOnConnackError: true,
      will: { topic: stateTopic, payload: Buffer.from(willPayload(bdSeq)), qos: 1, retain: true },
    };
    const mq = connect(config.mqtt.url, options);
    mq.on('reconnect', () => {
      // Each attempt is a new birth/death pair: the Will sent with this CONNECT carries the new bdSeq.
      bdSeq = seq!.nextBdSeq();
      if (mq.options.will) mq.options.will.payload = Buffer.from(willPayload(bdSeq));
    });
    mq.on('connect', () => onConnect(mq));
    mq.on('message', (topic, payload) => {
      if (topic !== cmdTopic) return;
      onCommand(payload).catch((err) => log.warn({ err: (err as Error).message }, 'command acknowledgement not published'));
    });
    mq.on('offline', () => log.warn('mqtt offline; readings wait in the outbox'));
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
          reject(new CsError(EdgeErrors.MQTT_AUTH, `broker ${config.mqtt.url} refused gateway ${gw}: ${err.message}`, { code: err.code }));
        }
      };
      // The broker is not there yet: run anyway; readings wait and the client keeps trying.
      const onClose = () => { settle(); log.warn({ url: config.mqtt.url }, 'mqtt broker not reachable; retrying'); resolve(); };
      mq.on('connect', onFirst);
      mq.on('error', onError);
      mq.on('close', onClose);
    });
    return { mq, ready };
  }

  async function start(): Promise<void> {
    if (state !== 'idle') throw new CsError(EdgeErrors.STATE, `edge ${gw} was already started`);
    const problems = crossCheckEdgeConfig(config, opts.profiles);
    if (problems.length) throw new ConfigError(EdgeErrors.CONFIG_INVALID, `(edge ${gw} config)`, problems);
    seq = openSeqStore(opts.dataDir);
    outbox = opts.outbox ?? createMemoryOutbox();
    router = createCommandRouter({ handlers, now, logger: log.child({ part: 'cmd' }) });
    const { mq, ready } = connectMqtt();
    client = mq;
    // Polling starts at once: readings published before the first CONNACK wait in the client,
    // and a command queued in the broker session finds the buses running.
    for (const bus of config.buses) {
      const busLog = log.child({ bus: bus.id });
      const transport = createTcpTransport({ bus, logger: busLog });
      transports.push(transport);
      const devices: PolledDevice[] = config.devices.filter((d) => d.bus === bus.id).map((d) => {
        const profile = opts.profiles.get(d.profile)!;
        return { id: d.id, profile, unitId: d.unitId, pollMs: d.pollMs ?? config.pollMs, blocks: planReads(profile) };
      });
      const poller = createBusPoller({ busId: bus.id, transport, devices, logger: busLog, onReading: publishReading });
      pollers.set(bus.id, poller);
      poller.start();
    }
    state = 'running';
    try {
      await ready;
    } catch (err) {
      await stop();
      throw err;
    }
    log.info({ buses: config.buses.length, devices: config.devices.length }, 'edge started');
  }

  async function stop(): Promise<void> {
    if (state !== 'running') {
      state = 'stopped';
      return;
    }
    state = 'stopped';
    await Promise.all([...pollers.values()].map((p) => p.stop()));
    const mq = client;
    if (mq) {
      if (mq.connected) {
        // Deliver what is in flight and say goodbye: a clean DISCONNECT discards the Will.
        // Both waits end early if the connection drops meanwhile.
        let onClose!: () => void;
        const closed = new Promise<void>((resolve) => { onClose = resolve; mq.once('close', onClose); });
        await withinMs(Promise.race([Promise.allSettled([...inflight]), closed]), STOP_FLUSH_MS);
        if (mq.connected) {
          const offline: GatewayState = { online: false, bdSeq, ts: iso() };
          await withinMs(Promise.race([mq.publishAsync(stateTopic, JSON.stringify(offline), { qos: 1, retain: true }).catch(() => undefined), closed]), STOP_FLUSH_MS);
        }
        mq.off('close', onClose);
      }
      // end(false) sends DISCONNECT once nothing is in flight; if PUBACKs never come, drop the socket
      // (the broker then publishes the Will, which says offline too).
      const ended = await withinMs(mq.endAsync(!mq.connected).then(() => true, () => true), STOP_FLUSH_MS);
      if (!ended) {
        log.warn('mqtt did not end cleanly; closing its socket');
        mq.stream?.destroy();
      }
    }
    await Promise.all(transports.map((t) => t.close()));
    await outbox?.close();
    seq?.close();
    transports.length = 0;
    log.info({ seq: seq?.last, published }, 'edge stopped');
  }

  function stats(): EdgeStats {
    const buses: EdgeStats['buses'] = {};
    let pollErrors = 0;
    for (const [id, p] of pollers) {
      const s = p.stats();
      buses[id] = s;
      pollErrors += s.errors;
    }
    return { seq: seq?.last ?? 0, published, pollErrors, buses };
  }

  return { start, stop, pollNow, stats };
}

/** Waits for `p` at most `ms`; the timer is always cleared. */
async function withinMs<T>(p: Promise<T>, ms: number): Promise<T | undefined> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([p, new Promise<undefined>((resolve) => { timer = setTimeout(() => resolve(undefined), ms); })]);
  } finally {
    clearTimeout(timer);
  }
}
