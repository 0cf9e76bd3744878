import { CsError } from '../lib/errors.ts';
import { silentLogger, type Logger } from '../lib/log.ts';
import type { EdgeAlarm, Reading } from '../lib/messages.ts';
import { topics } from '../lib/topics.ts';
import type { PollMode } from '../lib/vocabulary.ts';
import type { Profile } from '../devices/profile.ts';
import { createAlarmRules, type AlarmRules, type LocalAlarm } from './alarms.ts';
import { reportNowHandler } from './cmd-report-now.ts';
import { setModeHandler } from './cmd-set-mode.ts';
import { writePointHandler } from './cmd-write-point.ts';
import { setDevicesHandler } from './cmd-set-devices.ts';
import { createBusSet } from './buses.ts';
import { devicesDigest, readLiveConfig, withLive } from './live-config.ts';
import { createCommandRouter, type CommandRouter } from './commands.ts';
import { edgeRuleSet, validateEdgeConfig, type EdgeConfig, type EdgeConfigInput } from './config.ts';
import { EdgeErrors } from './errors.ts';
import type { EdgeHealth } from './health.ts';
import { startEdgeHttp, type EdgeHttpServer } from './http.ts';
import { createEdgeMetrics } from './metrics.ts';
import { readMode, writeMode, type EdgeMode } from './mode.ts';
import { createMemoryOutbox, openSqliteOutbox, type Outbox, type OutboxStats } from './outbox.ts';
import type { DeviceReading, PolledDevice } from './poller.ts';
import { createOutboxPump } from './pump.ts';
import { createReporter, type ReportPolicy } from './report.ts';
import { openSeqStore, type SeqStore } from './seq.ts';
import { openMqttSession, type MqttSession } from './session.ts';

/**
 * The edge gateway: polls its Modbus buses and publishes readings to the broker. This file assembles
 * the parts:
 *
 * - one transport (one link) per bus, one request at a time on it, buses in parallel; per-slave
 *   circuit breakers (poller.ts);
 * - outbox first (docs/architecture.md, the data path): a reading gets the next per-gateway `seq`
 *   (seq.ts), is committed to the outbox (outbox.ts, SQLite by default), and only then published by
 *   the pump (pump.ts), which also decides `historical`;
 * - the MQTT session (session.ts): birth, Will, commands and their acknowledgements, offline state;
 * - commands (commands.ts), one handler per type: report-now, set-mode, write-point, set-devices
 *   (cmd-*.ts); the mode (mode.ts) and the devices the cloud sent (live-config.ts) are persisted and
 *   survive a restart; buses and devices change while polling goes on (buses.ts);
 * - health (bus, link and slave counters, outbox depth) on `cs/v1/{gw}/health` every `healthMs`, and
 *   from the same figures `/metrics` and `/healthz` on the optional local `http` port (metrics.ts, http.ts).
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
  mode: PollMode;
  /** Current poll interval per device. */
  pollMs: Record<string, number>;
  /** The revision of the buses and devices polled (config `revision`, or the last `set-devices`); 0 for a hand-written config. */
  revision: number;
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
  /** Where the local HTTP port listens while running (config `http`), else undefined. */
  httpAddress(): { host: string; port: number } | undefined;
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
  let session: MqttSession | undefined;
  let router: CommandRouter | undefined;
  let mode: EdgeMode = { mode: 'normal', since: new Date(now()).toISOString() };
  const counts = { accepted: 0, suppressed: 0, alarms: 0 };
  const reporter = createReporter();
  const pump = createOutboxPump({ window: () => config.outbox.inflight, logger: log });
  let alarmRules: AlarmRules | undefined;
  let healthTimer: NodeJS.Timeout | undefined;
  let modeTimer: NodeJS.Timeout | undefined;
  let refusing = false;
  /** The outbox's figures when stop() closed it. */
  let finalOutbox: OutboxStats = { depth: 0, appended: 0, acked: 0, dropped: 0, expired: 0 };
  /** Expired entries already logged. */
  let expiredLogged = 0;
  let boxClosed = false;
  let http: EdgeHttpServer | undefined;
  const metrics = createEdgeMetrics({ health: () => health(), mqttConnected: () => Boolean(session?.client.connected), polling: () => state === 'running' });
  const busSet = createBusSet({ profiles: opts.profiles, logger: log, now, onReading: (r) => onReading(r), metrics, intervalOf: (d) => intervalOf(d) });
  const { transports, pollers, devices } = busSet;

  const iso = () => new Date(now()).toISOString();

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
    pump.accepted(n);
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
    const dev = devices.get(r.device);
    if (!dev) return; // removed by set-devices while its poll was on the bus
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

  const handlers = {
    'report-now': reportNowHandler({ pollAll: pollNow }),
    'set-mode': setModeHandler({ dataDir: opts.dataDir, now, fast: () => config.fast, apply: applyMode, logger: log }),
    'write-point': writePointHandler({ gateway: gw, pollers: () => pollers.values(), logger: log }),
    'set-devices': setDevicesHandler({
      dataDir: opts.dataDir, now, logger: log, current: () => config,
      validate: (candidate) => validateEdgeConfig(candidate, opts.profiles, `(set-devices for ${gw})`),
      apply: async (next) => {
        config = next;
        const diff = await busSet.apply(next, state === 'running');
        for (const p of pollers.values()) p.retime(intervalOf);
        return diff;
      },
    }),
  };

  function health(): EdgeHealth {
    const buses: EdgeHealth['buses'] = {};
    for (const [id, p] of pollers) {
      const t = transports.get(id)!;
      buses[id] = { ...p.stats(), link: t.stats(), slaves: p.health() };
    }
    let box: EdgeHealth['outbox'] = { depth: 0, appended: 0, acked: 0, dropped: 0, expired: 0, inflight: 0 };
    if (outbox) {
      const { oldestAt, ...s } = outboxStats();
      box = { ...s, inflight: pump.inflight, ...(oldestAt !== undefined ? { oldestAgeMs: Math.max(0, Math.round(now() - oldestAt)) } : {}) };
    }
    return {
      ts: iso(), gateway: gw, mode: mode.mode, seq: seq?.last ?? 0,
      outbox: box,
      published: pump.published, suppressed: counts.suppressed, buses,
    };
  }

  /** The outbox's figures; logs entries its retention dropped since the last look. */
  function outboxStats(): OutboxStats {
    const s = outbox!.stats();
    if (s.expired > expiredLogged) {
      log.warn({ expired: s.expired - expiredLogged, maxAgeMs: config.outbox.maxAgeMs }, 'outbox entries older than its retention dropped (the cloud would refuse them as ts-too-old)');
      expiredLogged = s.expired;
    }
    return s;
  }

  function publishHealth(): void {
    const mq = session?.client;
    if (!mq?.connected) return;
    mq.publish(topics.health(gw), JSON.stringify(health()), { qos: 0 });
  }

  async function start(): Promise<void> {
    if (state !== 'idle') throw new CsError(EdgeErrors.STATE, `edge ${gw} was already started`);
    // Defaults apply to configs built in code too (the demo, tests), not only to loaded files.
    config = validateEdgeConfig(opts.config, opts.profiles, `(edge ${gw} config)`);
    config = withPersistedDevices(config);
    alarmRules = createAlarmRules({ rules: edgeRuleSet(config, opts.profiles), debounceMs: config.alarms.debounceMs });
    seq = openSeqStore(opts.dataDir);
    const limits = { maxEntries: config.outbox.maxEntries, dropPolicy: config.outbox.dropPolicy, maxAgeMs: config.outbox.maxAgeMs, now };
    outbox = opts.outbox ?? (config.outbox.kind === 'memory'
      ? createMemoryOutbox(limits)
      : openSqliteOutbox({ dataDir: opts.dataDir, sync: config.outbox.sync, ...limits }));
    mode = readMode(opts.dataDir, now());
    if (outbox.size() > 0) log.info({ backlog: outbox.size() }, 'outbox holds readings of an earlier run; they are replayed as historical');
    router = createCommandRouter({ handlers, now, logger: log.child({ part: 'cmd' }) });
    const store = seq;
    const box = outbox;
    const cmds = router;
    session = openMqttSession({
      gateway: gw, mqtt: config.mqtt, reconnectMs: opts.reconnectMs, nextBdSeq: () => store.nextBdSeq(), logger: log, now,
      mode: () => mode.mode, backlog: () => box.size(),
      config: () => ({ revision: config.revision ?? 0, digest: devicesDigest(config) }),
      onConnect: () => { pump.connected(); pump.pump(); },
      onCommand: (payload) => cmds.handle(payload),
    });
    pump.attach(outbox, session.client);
    // Polling starts at once: readings wait in the outbox until the broker is there.
    await busSet.apply(config, false);
    if (!config.devices.length) log.warn('no devices configured yet: waiting for set-devices from the cloud');
    state = 'running';
    for (const p of pollers.values()) p.start();
    applyMode(mode);
    if (mode.mode !== 'normal') log.info({ mode: mode.mode, pollMs: mode.pollMs, since: mode.since }, 'resuming persisted mode');
    if (config.healthMs > 0) {
      healthTimer = setInterval(publishHealth, config.healthMs);
      healthTimer.unref();
    }
    try {
      if (config.http) http = await startEdgeHttp({ host: config.http.host, port: config.http.port, metrics, logger: log.child({ part: 'http' }) });
      await session.ready;
    } catch (err) {
      await stop();
      throw err;
    }
    log.info({ buses: config.buses.length, devices: config.devices.length, mode: mode.mode }, 'edge started');
  }

  /** The buses and devices of an earlier set-devices (devices.json) when newer than the file's; the file's when they cannot be used. */
  function withPersistedDevices(fromFile: EdgeConfig): EdgeConfig {
    try {
      const live = readLiveConfig(opts.dataDir);
      if (!live || live.revision <= (fromFile.revision ?? 0)) return fromFile;
      const cfg = validateEdgeConfig(withLive(fromFile, live), opts.profiles, `(edge ${gw} devices.json)`);
      log.info({ revision: live.revision, fileRevision: fromFile.revision ?? 0, devices: live.devices.length }, 'devices of the last set-devices (devices.json) replace the config file\'s');
      return cfg;
    } catch (err) {
      log.error({ err: (err as Error).message }, 'devices.json cannot be used; polling the config file\'s devices');
      return fromFile;
    }
  }

  async function stop(): Promise<void> {
    if (state !== 'running') {
      state = 'stopped';
      return;
    }
    state = 'stopped';
    clearInterval(healthTimer);
    clearTimeout(modeTimer);
    await http?.close();
    http = undefined;
    await Promise.all([...pollers.values()].map((p) => p.stop()));
    await session?.close((ms) => pump.drained(ms));
    pump.forget();
    await Promise.all([...transports.values()].map((t) => t.close()));
    boxClosed = true;
    pump.close();
    if (outbox) finalOutbox = outbox.stats();
    await outbox?.close();
    seq?.close();
    transports.clear();
    log.info({ seq: seq?.last, published: pump.published }, 'edge stopped');
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
      seq: seq?.last ?? 0, published: pump.published, ...counts, pollErrors, buses, mode: mode.mode, pollMs, revision: config?.revision ?? 0,
      outbox: outbox && !boxClosed ? outbox.stats() : finalOutbox,
    };
  }

  return { start, stop, pollNow: () => pollNow(false), drained: (timeoutMs = 10_000) => pump.drained(timeoutMs), stats, health, httpAddress: () => http?.address };
}
