import { Type } from '@sinclair/typebox';
import { connect, type IClientOptions, type MqttClient } from 'mqtt';
import { CsError } from '../lib/errors.ts';
import { silentLogger, type Logger } from '../lib/log.ts';
import { PointValue, type CommandAck, type EdgeAlarm, type GatewayState, type Reading } from '../lib/messages.ts';
import { check } from '../lib/schema.ts';
import { topics } from '../lib/topics.ts';
import type { Profile } from '../devices/profile.ts';
import { createAlarmRules, type AlarmRules, type LocalAlarm } from './alarms.ts';
import { createCommandRouter, type CommandHandler, type CommandRouter } from './commands.ts';
import { edgeRuleSet, validateEdgeConfig, type EdgeConfig, type EdgeConfigInput } from './config.ts';
import { EdgeErrors } from './errors.ts';
import type { EdgeHealth } from './health.ts';
import { readMode, writeMode, type EdgeMode } from './mode.ts';
import { createMemoryOutbox, openSqliteOutbox, type Outbox, type OutboxEntry, type OutboxStats } from './outbox.ts';
import { planReads } from './plan.ts';
import { createBusPoller, type BusPoller, type DeviceReading, type PolledDevice } from './poller.ts';
import { createReporter, type ReportPolicy } from './report.ts';
import { openSeqStore, type SeqStore } from './seq.ts';
import { createBusTransport, type BusTransport } from './transport.ts';

/**
 * The edge gateway: polls its Modbus buses and publishes readings to the broker.
 *
 * - one transport (one link) per bus, one request at a time on it, buses in parallel; per-slave
 *   circuit breakers (poller.ts);
 * - outbox first (docs/targets.md#lessons-from-the-systems-we-mean-to-beat): a reading gets the next per-gateway `seq` (seq.ts), is
 *   committed to the outbox (outbox.ts, SQLite by default), and only then published, QoS 1, by the
 *   pump below, at most `outbox.inflight` awaiting PUBACK; the PUBACK deletes it. After an outage or
 *   a restart the pump replays what is left in seq order;
 * - `historical`: a reading is published with `historical: false` only on the connection that was up
 *   when it was read. Everything read while no connection was up, or left in the outbox by an earlier
 *   run, is published with `historical: true`. (A reading already handed to MQTT when the link dropped
 *   is retransmitted by MQTT as it was, DUP set; the cloud keeps one copy per (gateway, seq).)
 * - a retained birth on `cs/v1/{gw}/state` at every connection, a retained Will with the same
 *   bdSeq, a clean offline state on stop();
 * - commands on `cs/v1/{gw}/cmd` (report-now, set-mode, write-point), acknowledged on
 *   `cs/v1/{gw}/cmd/ack`; the mode is persisted (mode.ts) and survives a restart;
 * - health (bus, link and slave counters, outbox depth) on `cs/v1/{gw}/health` every `healthMs`.
 *
 * The factory stores its dependencies; start() creates and stop() releases every socket and timer.
 */

export interface EdgeOptions {
  /** Validated and completed with defaults by start(). */
  config: EdgeConfigInput;
  profiles: Map<string, Profile>;
  /** Where the gateway keeps its state (seq.json, mode.json, outbox.sqlite). */
  dataDir: string;
  logger?: Logger;
  now?: () => number;
  /** Default: from the config (`outbox.kind`, SQLite in dataDir unless `memory`). */
  outbox?: Outbox;
  /** Reconnect interval of the MQTT client; default 1000 ms. */
  reconnectMs?: number;
}

export interface EdgeStats {
  /** The last sequence number handed out. */
  seq: number;
  /** Readings acknowledged by the broker since start(). */
  published: number;
  /** Readings accepted into the outbox since start(). */
  accepted: number;
  /** Readings not published because report-by-exception found nothing new. */
  suppressed: number;
  /** Edge-local alarms raised or cleared since start(). */
  alarms: number;
  /** Device polls that failed since start(). */
  pollErrors: number;
  /** Device polls per bus since start(). */
  buses: Record<string, { ok: number; errors: number }>;
  outbox: OutboxStats;
  mode: EdgeMode['mode'];
  /** Current poll interval per device. */
  pollMs: Record<string, number>;
}

export interface Edge {
  start(): Promise<void>;
  stop(): Promise<void>;
  /** One full pass over every device; resolves when each reading is accepted into the outbox (failed devices are skipped). */
  pollNow(): Promise<void>;
  /** Resolves when the outbox is empty (every accepted reading acknowledged), or after `timeoutMs` with false. */
  drained(timeoutMs?: number): Promise<boolean>;
  stats(): EdgeStats;
  health(): EdgeHealth;
}

/** How long stop() waits for outstanding PUBACKs and the offline state before it forces the client closed. */
const STOP_FLUSH_MS = 2000;

/** Arguments of the commands (the envelope is lib/messages.ts Command). */
const SetModeArgs = Type.Object({
  mode: Type.Union([Type.Literal('normal'), Type.Literal('fast')]),
  pollMs: Type.Optional(Type.Integer({ minimum: 100, maximum: 3_600_000 })),
  heartbeatMs: Type.Optional(Type.Integer({ minimum: 100, maximum: 86_400_000 })),
  until: Type.Optional(Type.String({ format: 'date-time' })),
});
const WritePointArgs = Type.Object({
  device: Type.String({ minLength: 1 }),
  point: Type.String({ minLength: 1 }),
  value: PointValue,
});

function args<T extends Parameters<typeof check>[0]>(schema: T, cmd: unknown) {
  const r = check(schema, cmd);
  if (!r.ok) throw new CsError(EdgeErrors.CMD_REJECTED, `invalid arguments: ${r.problems.map((p) => `${p.key}: ${p.message}`).join('; ')}`);
  return r.value;
}

export function buildEdge(opts: EdgeOptions): Edge {
  const gw = opts.config.gateway;
  const now = opts.now ?? Date.now;
  const base = opts.logger ?? silentLogger();
  const log = base.bindings().gateway === gw ? base : base.child({ gateway: gw });

  let config!: EdgeConfig;
  let state: 'idle' | 'running' | 'stopped' = 'idle';
  let seq: SeqStore | undefined;
  let outbox: Outbox | undefined;
  let client: MqttClient | undefined;
  let router: CommandRouter | undefined;
  let mode: EdgeMode = { mode: 'normal', since: new Date(now()).toISOString() };
  let bdSeq = 0;
  const counts = { published: 0, accepted: 0, suppressed: 0, alarms: 0 };
  const transports = new Map<string, BusTransport>();
  const pollers = new Map<string, BusPoller>();
  const devices = new Map<string, PolledDevice & { cfg: EdgeConfig['devices'][number] }>();
  const reporter = createReporter();
  let alarmRules: AlarmRules | undefined;
  let healthTimer: NodeJS.Timeout | undefined;
  let modeTimer: NodeJS.Timeout | undefined;

  // ---- the pump: outbox → MQTT, at most `inflight` awaiting PUBACK ----
  /** seq → connection epoch it was read on (only for readings read while connected). */
  const liveEpoch = new Map<number, number>();
  let epoch = 0;
  const inflight = new Set<number>();
  /** Highest seq handed to MQTT; the next pass reads the outbox after it. -1 rescans from the start. */
  let cursor = -1;
  let pumping = false;
  let boxClosed = false;
  let refusing = false;
  /** The outbox's figures when stop() closed it. */
  let finalOutbox: OutboxStats = { depth: 0, appended: 0, acked: 0, dropped: 0 };
  let pumpAgain = false;
  const drainWaiters = new Set<() => void>();

  const iso = () => new Date(now()).toISOString();
  const stateTopic = topics.state(gw);
  const cmdTopic = topics.cmd(gw);

  function willPayload(n: number): string {
    return JSON.stringify({ online: false, bdSeq: n, ts: iso() } satisfies GatewayState);
  }

  function checkDrained(): void {
    if (outbox && outbox.size() === 0 && inflight.size === 0) for (const w of drainWaiters) w();
  }

  function handOff(mq: MqttClient, entry: OutboxEntry): void {
    const live = liveEpoch.get(entry.seq) === epoch;
    liveEpoch.delete(entry.seq);
    let payload = entry.payload;
    if (!live) {
      const body = JSON.parse(payload) as { historical?: boolean };
      body.historical = true;
      payload = JSON.stringify(body);
    }
    inflight.add(entry.seq);
    cursor = Math.max(cursor, entry.seq);
    // The callback is the PUBACK (QoS 1), also when MQTT resends the packet after a reconnect.
    mq.publish(entry.topic, payload, { qos: 1 }, (err) => {
      inflight.delete(entry.seq);
      if (err) {
        // Not acknowledged and no longer with MQTT (e.g. the client ended): a later pass resends it.
        cursor = -1;
        log.debug({ seq: entry.seq, err: err.message }, 'publish not acknowledged; kept in the outbox');
        return;
      }
      counts.published += 1;
      // Refill the window once the ack is committed: the next pending() then finds no batch to flush,
      // so the acks of one turn share one commit instead of one fsync each.
      void outbox?.ack(entry.seq).then(() => { checkDrained(); pump(); });
    });
  }

  /** Hands pending entries to MQTT in seq order while connected and the window has room. */
  function pump(): void {
    if (pumping) { pumpAgain = true; return; }
    const mq = client;
    const box = outbox;
    if (!mq || !box || boxClosed) return;
    pumping = true;
    void (async () => {
      try {
        do {
          pumpAgain = false;
          while (mq.connected && client === mq && inflight.size < config.outbox.inflight) {
            const room = config.outbox.inflight - inflight.size;
            const batch = (await box.pending(room + (cursor < 0 ? inflight.size : 0), cursor)).filter((e) => !inflight.has(e.seq));
            if (batch.length === 0) break;
            for (const e of batch.slice(0, room)) handOff(mq, e);
          }
        } while (pumpAgain);
      } catch (err) {
        log.error({ err: (err as Error).message }, 'outbox pump failed');
      } finally {
        pumping = false;
      }
    })();
  }

  /** Numbers a message, commits it to the outbox, then lets the pump publish it. */
  async function accept(topic: string, body: (seq: number) => object): Promise<void> {
    if (!seq || !outbox) throw new CsError(EdgeErrors.STATE, 'edge is not running');
    const n = seq.next();
    const stored = await outbox.append({ seq: n, topic, payload: JSON.stringify(body(n)) });
    if (!stored) {
      // Once per full spell, then quietly (the count is in health as outbox.dropped).
      if (!refusing) log.warn({ seq: n, maxEntries: config.outbox.maxEntries }, 'outbox full (drop-newest): new readings are dropped');
      refusing = true;
      return;
    }
    refusing = false;
    counts.accepted += 1;
    if (client?.connected) liveEpoch.set(n, epoch);
    pump();
  }

  function policyOf(dev: EdgeConfig['devices'][number]): ReportPolicy {
    const normalHb = dev.heartbeatMs ?? config.reporting.heartbeatMs;
    const heartbeatMs = mode.mode === 'fast' ? Math.min(normalHb, mode.heartbeatMs ?? config.fast.heartbeatMs) : normalHb;
    return { mode: config.reporting.mode, heartbeatMs, deadbands: dev.deadbands ?? {}, defaultDeadband: config.reporting.deadband };
  }

  function intervalOf(dev: PolledDevice): number {
    const normal = devices.get(dev.id)?.cfg.pollMs ?? config.pollMs;
    return mode.mode === 'fast' ? Math.min(normal, mode.pollMs ?? config.fast.pollMs) : normal;
  }

  async function onReading(r: DeviceReading): Promise<void> {
    const dev = devices.get(r.device)!;
    const t = now();
    // In fast (emergency) mode the rules' emergency limits apply, as in the cloud.
    const alarms: LocalAlarm[] = config.alarms.enabled && alarmRules ? alarmRules.evaluate(r.device, dev.profile.id, r.values, t, mode.mode === 'fast') : [];
    for (const a of alarms) {
      counts.alarms += 1;
      log.warn({ device: a.device, rule: a.rule, active: a.active, value: a.value }, a.active ? 'edge alarm raised' : 'edge alarm cleared');
      await accept(topics.alarm(gw, r.device), (n) => ({ seq: n, stream: seq!.stream, ts: iso(), ...a, historical: false } satisfies EdgeAlarm));
    }
    // An alarm always carries the reading that raised it.
    const report = reporter.decide(alarms.length ? { ...r, forced: true } : r, policyOf(dev.cfg), t);
    if (!report) {
      counts.suppressed += 1;
      return;
    }
    await accept(topics.up(gw, r.device), (n) => ({
      seq: n, stream: seq!.stream, ts: iso(), device: r.device, values: r.values, quality: r.quality, historical: false,
    } satisfies Reading));
  }

  async function pollNow(forced = false): Promise<void> {
    if (state !== 'running') throw new CsError(EdgeErrors.STATE, `edge ${gw} is not running`);
    await Promise.all([...pollers.values()].map((p) => p.pollAll(forced)));
  }

  function applyMode(next: EdgeMode): void {
    mode = next;
    for (const p of pollers.values()) p.retime(intervalOf);
    clearTimeout(modeTimer);
    modeTimer = undefined;
    if (mode.mode === 'fast' && mode.until) {
      const ms = Date.parse(mode.until) - now();
      modeTimer = setTimeout(() => {
        log.info({ until: mode.until }, 'fast mode expired; back to normal');
        const normal: EdgeMode = { mode: 'normal', since: iso() };
        writeMode(opts.dataDir, normal);
        applyMode(normal);
      }, Math.max(0, Math.min(ms, 2 ** 31 - 1)));
      modeTimer.unref();
    }
  }

  const handlers: Record<string, CommandHandler> = {
    'report-now': async () => {
      await pollNow(true);
    },
    'set-mode': async (cmd) => {
      const a = args(SetModeArgs, cmd);
      if (a.until && Date.parse(a.until) <= now()) throw new CsError(EdgeErrors.CMD_REJECTED, `until ${a.until} is in the past`);
      const next: EdgeMode = a.mode === 'fast'
        ? { mode: 'fast', pollMs: a.pollMs ?? config.fast.pollMs, heartbeatMs: a.heartbeatMs ?? config.fast.heartbeatMs, ...(a.until ? { until: a.until } : {}), since: iso(), command: cmd.id }
        : { mode: 'normal', since: iso(), command: cmd.id };
      // Persist before applying and acknowledging: an acknowledged mode survives a restart.
      writeMode(opts.dataDir, next);
      applyMode(next);
      log.info({ mode: next.mode, pollMs: next.pollMs, until: next.until }, 'mode set');
      return { message: next.mode === 'fast' ? `fast: poll every ${next.pollMs} ms, heartbeat ${next.heartbeatMs} ms` : 'normal' };
    },
    'write-point': async (cmd) => {
      const a = args(WritePointArgs, cmd);
      const poller = [...pollers.values()].find((p) => p.hasDevice(a.device));
      if (!poller) throw new CsError(EdgeErrors.CMD_REJECTED, `gateway ${gw} has no device "${a.device}"`);
      await poller.write(a.device, a.point, a.value);
      log.info({ device: a.device, point: a.point, value: a.value }, 'point written');
      // Report the device at once, so the cloud sees what the write did.
      await poller.pollDevice(a.device, true);
      return { message: `${a.device}.${a.point} written` };
    },
  };

  async function onCommand(payload: Buffer): Promise<void> {
    const ack = await router!.handle(payload);
    if (!ack || !client) return;
    log.info({ id: ack.id, outcome: ack.outcome }, 'command acknowledged');
    await client.publishAsync(topics.cmdAck(gw), JSON.stringify(ack satisfies CommandAck), { qos: 1 });
  }

  function onConnect(mq: MqttClient): void {
    epoch += 1;
    log.info({ bdSeq, backlog: outbox?.size() }, 'mqtt connected');
    // Subscribe before the birth, so that whoever reacts to the birth finds us listening (Sparkplug order).
    mq.subscribe(cmdTopic, { qos: 1 }, (err) => {
      if (err) log.error({ err: err.message }, 'subscribe to commands failed');
      const birth: GatewayState = { online: true, bdSeq, ts: iso(), mode: mode.mode };
      mq.publish(stateTopic, JSON.stringify(birth), { qos: 1, retain: true }, (e) => {
        if (e) log.warn({ err: e.message }, 'birth not acknowledged');
      });
    });
    pump();
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
    mq.on('offline', () => log.warn({ backlog: outbox?.size() }, 'mqtt offline; readings wait in the outbox'));
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
      // The broker is not there yet: run anyway; readings wait in the outbox and the client keeps trying.
      const onClose = () => { settle(); log.warn({ url: config.mqtt.url }, 'mqtt broker not reachable; retrying'); resolve(); };
      mq.on('connect', onFirst);
      mq.on('error', onError);
      mq.on('close', onClose);
    });
    return { mq, ready };
  }

  function health(): EdgeHealth {
    const buses: EdgeHealth['buses'] = {};
    for (const [id, p] of pollers) {
      const t = transports.get(id)!;
      buses[id] = { ...p.stats(), link: t.stats(), slaves: p.health() };
    }
    return {
      ts: iso(), gateway: gw, mode: mode.mode, seq: seq?.last ?? 0,
      outbox: outbox ? { ...outbox.stats(), inflight: inflight.size } : { depth: 0, appended: 0, acked: 0, dropped: 0, inflight: 0 },
      published: counts.published, suppressed: counts.suppressed, buses,
    };
  }

  function publishHealth(): void {
    const mq = client;
    if (!mq?.connected) return;
    mq.publish(topics.health(gw), JSON.stringify(health()), { qos: 0 });
  }

  async function start(): Promise<void> {
    if (state !== 'idle') throw new CsError(EdgeErrors.STATE, `edge ${gw} was already started`);
    // Defaults apply to configs built in code too (the demo, tests), not only to loaded files.
    config = validateEdgeConfig(opts.config, opts.profiles, `(edge ${gw} config)`);
    alarmRules = createAlarmRules({ rules: edgeRuleSet(config, opts.profiles), debounceMs: config.alarms.debounceMs });
    seq = openSeqStore(opts.dataDir);
    const limits = { maxEntries: config.outbox.maxEntries, dropPolicy: config.outbox.dropPolicy };
    outbox = opts.outbox ?? (config.outbox.kind === 'memory'
      ? createMemoryOutbox(limits)
      : openSqliteOutbox({ dataDir: opts.dataDir, sync: config.outbox.sync, ...limits }));
    mode = readMode(opts.dataDir, now());
    if (outbox.size() > 0) log.info({ backlog: outbox.size() }, 'outbox holds readings of an earlier run; they are replayed as historical');
    router = createCommandRouter({ handlers, now, logger: log.child({ part: 'cmd' }) });
    const { mq, ready } = connectMqtt();
    client = mq;
    // Polling starts at once: readings wait in the outbox until the broker is there.
    for (const bus of config.buses) {
      const busLog = log.child({ bus: bus.id });
      const transport = createBusTransport({ bus, logger: busLog });
      transports.set(bus.id, transport);
      const polled: PolledDevice[] = config.devices.filter((d) => d.bus === bus.id).map((d) => {
        const profile = opts.profiles.get(d.profile)!;
        const dev = { id: d.id, profile, unitId: d.unitId, pollMs: d.pollMs ?? config.pollMs, blocks: planReads(profile, { maxGap: d.maxGap ?? config.maxGap }) };
        devices.set(d.id, { ...dev, cfg: d });
        return { ...dev, pollMs: intervalOf(dev) };
      });
      const poller = createBusPoller({ busId: bus.id, transport, devices: polled, logger: busLog, onReading, breaker: config.breaker, now });
      pollers.set(bus.id, poller);
    }
    state = 'running';
    for (const p of pollers.values()) p.start();
    applyMode(mode);
    if (mode.mode !== 'normal') log.info({ mode: mode.mode, pollMs: mode.pollMs, since: mode.since }, 'resuming persisted mode');
    if (config.healthMs > 0) {
      healthTimer = setInterval(publishHealth, config.healthMs);
      healthTimer.unref();
    }
    try {
      await ready;
    } catch (err) {
      await stop();
      throw err;
    }
    log.info({ buses: config.buses.length, devices: config.devices.length, mode: mode.mode }, 'edge started');
  }

  async function stop(): Promise<void> {
    if (state !== 'running') {
      state = 'stopped';
      return;
    }
    state = 'stopped';
    clearInterval(healthTimer);
    clearTimeout(modeTimer);
    await Promise.all([...pollers.values()].map((p) => p.stop()));
    const mq = client;
    if (mq) {
      if (mq.connected) {
        // Deliver what is in flight and say goodbye: a clean DISCONNECT discards the Will.
        // Both waits end early if the connection drops meanwhile. What is not acknowledged stays in the outbox.
        let onClose!: () => void;
        const closed = new Promise<void>((resolve) => { onClose = resolve; mq.once('close', onClose); });
        await withinMs(Promise.race([drained(STOP_FLUSH_MS), closed]), STOP_FLUSH_MS);
        if (mq.connected) {
          const offline: GatewayState = { online: false, bdSeq, ts: iso(), mode: mode.mode };
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
    drainWaiters.clear();
    await Promise.all([...transports.values()].map((t) => t.close()));
    boxClosed = true;
    if (outbox) finalOutbox = outbox.stats();
    await outbox?.close();
    seq?.close();
    transports.clear();
    log.info({ seq: seq?.last, published: counts.published }, 'edge stopped');
  }

  function stats(): EdgeStats {
    const buses: EdgeStats['buses'] = {};
    let pollErrors = 0;
    for (const [id, p] of pollers) {
      const s = p.stats();
      buses[id] = s;
      pollErrors += s.errors;
    }
    const pollMs: Record<string, number> = {};
    for (const d of devices.values()) pollMs[d.id] = intervalOf(d);
    return {
      seq: seq?.last ?? 0, ...counts, pollErrors, buses, mode: mode.mode, pollMs,
      outbox: outbox && !boxClosed ? outbox.stats() : finalOutbox,
    };
  }

  async function drained(timeoutMs = 10_000): Promise<boolean> {
    if (!outbox) return true;
    let w!: () => void;
    const done = new Promise<boolean>((resolve) => { w = () => resolve(true); drainWaiters.add(w); });
    checkDrained();
    const r = await withinMs(done, timeoutMs);
    drainWaiters.delete(w);
    return r ?? false;
  }

  return { start, stop, pollNow: () => pollNow(false), drained, stats, health };
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
