/**
 * The cloud side of the emergency bench, in the bench's own process: one mqtt.js client of the
 * service identity (MQTT 3.1.1) that publishes the commands and receives every acknowledgement
 * and gateway birth, and two ways of telling every gateway to poll fast through it:
 *   - bare: one command per gateway on `cs/v1/{gw}/cmd` (QoS 1), then wait for every ack; no
 *     emergency logic, the floor set by the broker and the clients;
 *   - ours: cloud/emergency `buildEmergency` on an SQLite database in a temp dir, fed a CAP
 *     warning (orange typhoon, a fresh identifier each round) and measured until
 *     `fanout.settled()`: parse, policy, audited mode switch, fan-out and ack tracking.
 * Both share the same message handler (topic parse + JSON parse + per-round ack tally), so the
 * difference between them is the emergency service's own work.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connectAsync, type MqttClient } from 'mqtt';
import { sql } from 'kysely';
import { openDatabase, type Database } from '../cloud/db/database.ts';
import { emergencyMigration } from '../cloud/emergency/migration.ts';
import { WarningPolicy } from '../cloud/emergency/policy.ts';
import { buildEmergency, type Emergency } from '../cloud/emergency/service.ts';
import { silentLogger } from '../lib/log.ts';
import { check } from '../lib/schema.ts';
import { parseTopic, topics } from '../lib/topics.ts';
import { SERVICE, account } from './identities.ts';
import { nowMs } from './stats.ts';
import { DEFAULT_FAST_POLL_MS } from '../lib/vocabulary.ts';

/** Poll interval the fast-mode command carries (the service's default). */
const FAST_POLL_MS = DEFAULT_FAST_POLL_MS;

const ORANGE = readFileSync(new URL('../test/fixtures/cap/orange-typhoon.xml', import.meta.url), 'utf8');

/** The orange typhoon fixture under a fresh CAP identifier (CAP 1.2 3.2.1: sender + identifier name a message). */
export function freshWarning(tag: string): string {
  const xml = ORANGE.replace(/<identifier>[^<]*<\/identifier>/, `<identifier>GD-ZH-BENCH-${tag}</identifier>`);
  if (xml === ORANGE) throw new Error('orange-typhoon.xml has no <identifier> to replace');
  return xml;
}

export interface BareRound {
  /** Every command PUBACKed by the broker (ms from the first publish). */
  pubackedMs: number;
  /** The last gateway's acknowledgement arrived (ms from the first publish). */
  lastAckMs: number;
}

export interface EmergencyRound {
  /** The new mode state committed and audited (the mode store's `changed` event), before the fan-out starts. */
  committedMs: number;
  /** receiveWarning resolved: mode switched and audited, every command sent and PUBACKed. */
  switchedMs: number;
  /** The last gateway's acknowledgement of the mode command arrived. */
  lastAckMs: number;
  /** fanout.settled() resolved. */
  settledMs: number;
  /** Commands the fan-out sent in this round (more than one per gateway means retries). */
  attempts: number;
}

export interface CloudSide {
  bare(tag: string): Promise<BareRound>;
  emergency(tag: string): Promise<EmergencyRound>;
  /** Back to normal mode (not measured): switchMode normal, every gateway acknowledges. */
  reset(): Promise<void>;
  stop(): Promise<void>;
}

/** Acks per command id: which gateways acknowledged, and when the last one did. */
interface Tally { gateways: Set<string>; completeAt?: number; wake?: () => void }

export async function startCloud(url: string, gateways: string[], timeoutMs = 60_000): Promise<CloudSide> {
  const dir = mkdtempSync(join(tmpdir(), 'cs-bench-emergency-'));
  let db: Database | undefined;
  let client: MqttClient | undefined;
  let emergency: Emergency | undefined;
  const online = new Set<string>();
  const tallies = new Map<string, Tally>();
  let onBirth: (() => void) | undefined;
  /** Commands the fan-out has published so far. */
  let fanoutSends = 0;

  const tally = (id: string): Tally => {
    let t = tallies.get(id);
    if (!t) tallies.set(id, (t = { gateways: new Set() }));
    return t;
  };

  function onMessage(topic: string, payload: Buffer): void {
    const t = parseTopic(topic);
    if (!t) return;
    const body = JSON.parse(payload.toString()) as { id?: unknown; outcome?: unknown; online?: unknown };
    if (t.kind === 'cmd-ack') {
      if (typeof body.id === 'string' && body.outcome === 'ok') {
        const c = tally(body.id);
        c.gateways.add(t.gateway);
        if (c.completeAt === undefined && c.gateways.size === gateways.length) {
          c.completeAt = nowMs();
          c.wake?.();
        }
      }
      if (typeof body.id === 'string' && body.id.startsWith('mode-')) emergency?.fanout.onAck(t.gateway, body);
    } else if (t.kind === 'state') {
      if (body.online === true) {
        online.add(t.gateway);
        emergency?.fanout.onOnline(t.gateway);
        if (online.size === gateways.length) onBirth?.();
      } else {
        online.delete(t.gateway);
      }
    }
  }

  async function complete(id: string): Promise<number> {
    const c = tally(id);
    if (c.completeAt === undefined) {
      await new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`${id}: ${c.gateways.size} of ${gateways.length} gateways acknowledged within ${timeoutMs} ms`)), timeoutMs);
        c.wake = () => { clearTimeout(timer); resolve(); };
      });
    }
    tallies.delete(id);
    return c.completeAt!;
  }

  async function stop(): Promise<void> {
    await emergency?.stop();
    emergency = undefined;
    await client?.endAsync(true);
    client = undefined;
    await db?.close();
    db = undefined;
    rmSync(dir, { recursive: true, force: true });
  }

  try {
    db = openDatabase({ kind: 'sqlite', file: join(dir, 'cloud.db') });
    await db.migrate();
    // As in test/emergency/service.test.ts; skipped once the main migrator creates these tables itself.
    const present = await sql<{ n: number }>`select count(*) as n from sqlite_master where type = 'table' and name = 'emergency_state'`.execute(db.db);
    if (Number(present.rows[0]?.n ?? 0) === 0) await emergencyMigration.up(db.db as never);

    client = await connectAsync(url, {
      ...account(SERVICE), clientId: SERVICE, protocolVersion: 4, clean: true, keepalive: 60, reconnectPeriod: 0, connectTimeout: 60_000,
    });
    client.on('message', onMessage);
    const births = new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`only ${online.size} of ${gateways.length} gateway births arrived`)), timeoutMs);
      onBirth = () => { clearTimeout(timer); resolve(); };
    });
    const granted = await client.subscribeAsync([topics.allCmdAck, topics.allState], { qos: 1 });
    if (granted.some((g) => g.qos !== 1)) throw new Error(`service subscriptions refused: ${JSON.stringify(granted)}`);
    await births; // retained, so they arrive with the subscription

    const policy = check(WarningPolicy, {});
    if (!policy.ok) throw new Error('default warning policy does not validate');
    const c = client;
    const database = db;
    emergency = buildEmergency({
      db: database.db, write: database.write, policy: policy.value,
      gateways: () => gateways, isOnline: (g) => online.has(g),
      publish: async (topic, payload) => { fanoutSends++; await c.publishAsync(topic, payload, { qos: 1 }); },
      now: Date.now, logger: silentLogger(), fast: { pollMs: FAST_POLL_MS },
    });
    await emergency.start();
  } catch (err) {
    await stop();
    throw err;
  }

  const svc = client;
  const em = emergency;
  return {
    async bare(tag) {
      const id = `bare-${tag}`;
      const t0 = nowMs();
      let pubacked = 0;
      let pubackedAt = 0;
      let failed: Error | undefined;
      const allPubacked = new Promise<void>((resolve) => {
        for (const gw of gateways) {
          // The same command shape and size as the fan-out's, built per gateway as it does.
          const payload = JSON.stringify({ id, type: 'set-mode', mode: 'fast', pollMs: FAST_POLL_MS, ts: new Date().toISOString() });
          svc.publish(topics.cmd(gw), payload, { qos: 1 }, (err) => {
            if (err) failed ??= err;
            if (++pubacked === gateways.length) { pubackedAt = nowMs(); resolve(); }
          });
        }
      });
      const lastAck = await complete(id);
      await allPubacked;
      if (failed) throw failed;
      return { pubackedMs: pubackedAt - t0, lastAckMs: lastAck - t0 };
    },

    async emergency(tag) {
      const epoch = em.state().epoch + 1;
      const xml = freshWarning(tag);
      const sendsBefore = fanoutSends;
      let committed = NaN;
      const onChanged = (): void => { committed = nowMs(); };
      em.store.once('changed', onChanged);
      const t0 = nowMs();
      const r = await em.receiveWarning(xml, 'bench-feed');
      const switched = nowMs();
      em.store.off('changed', onChanged);
      if (r.duplicate || r.decision.action !== 'enter' || r.state.mode !== 'emergency' || r.state.epoch !== epoch) {
        throw new Error(`warning ${tag} did not switch the mode: ${JSON.stringify({ duplicate: r.duplicate, decision: r.decision, state: r.state })}`);
      }
      await em.fanout.settled();
      const settled = nowMs();
      const lastAck = await complete(`mode-${epoch}`);
      const status = em.fanout.status();
      if (status.missing.length > 0) throw new Error(`${status.missing.length} gateways missing after settled()`);
      return { committedMs: committed - t0, switchedMs: switched - t0, lastAckMs: lastAck - t0, settledMs: settled - t0, attempts: fanoutSends - sendsBefore };
    },

    async reset() {
      const s = await em.switchMode({ mode: 'normal', actor: 'bench', role: 'commander', reason: 'bench round over' });
      await em.fanout.settled();
      await complete(`mode-${s.epoch}`);
    },

    stop,
  };
}
