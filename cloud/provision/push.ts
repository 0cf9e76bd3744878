import type { Logger } from '../../lib/log.ts';
import type { GatewayState } from '../../lib/messages.ts';
import { topics } from '../../lib/topics.ts';
import type { Profile } from '../../devices/profile.ts';
import { COMMAND_MAX_BYTES, devicesDigest, SET_DEVICES_MAX_BUSES, SET_DEVICES_MAX_DEVICES } from '../../lib/edge-config.ts';
import { edgeConfigFor, type GatewayDevices } from './edge-config.ts';

/**
 * Pushes a gateway's buses and devices to its running edge as the `set-devices` command whenever the
 * registry changes them (docs/architecture.md#live-device-updates): a command, not a pull. It is sent
 * QoS 1 to the edge's persistent session, so an edge offline at the time gets it when it reconnects;
 * and each birth carries the revision and digest of what the edge polls, so an edge that missed it
 * anyway (a broker restart without Redis, a cloud down during the change) is sent the current list
 * when it comes online and its digest differs.
 *
 * Only edges running a config the cloud wrote are managed this way: their birth carries a revision
 * above 0. An edge with a hand-written config (the demo's, the seed district's) announces revision 0
 * and is left alone: its bus endpoints may differ from the registry's (the demo's simulators' ports).
 */

export interface DevicePushDeps {
  /** The gateway's buses and in-service devices now; undefined when unknown or retired. */
  gateway(id: string): GatewayDevices | undefined;
  /** The registry's version: the revision a command carries. */
  version(): number;
  profiles: Map<string, Profile>;
  publish(topic: string, payload: string): Promise<void>;
  now: () => number;
  logger: Logger;
}

export interface PushStatus { revision: number; sentAt: string; outcome?: string; message?: string }

export interface DevicePush {
  /** The registry changed these gateways' buses or devices (its onChange). */
  changed(gateways: string[]): void;
  /** A gateway's retained state: a birth with a revision marks it managed, and is compared with the registry. */
  state(gateway: string, state: GatewayState | undefined): void;
  /** An acknowledgement on `cs/v1/{gw}/cmd/ack` (any command's; others are ignored). */
  ack(gateway: string, ack: { id?: unknown; outcome?: unknown; message?: unknown }): void;
  /** The last set-devices per managed gateway and what its edge answered. */
  status(): Record<string, PushStatus>;
}

const ID_PREFIX = 'set-devices-r';

export function createDevicePush(deps: DevicePushDeps): DevicePush {
  const log = deps.logger;
  /** Managed gateways: what their last birth said they poll. */
  const births = new Map<string, { revision: number; digest: string }>();
  const sent = new Map<string, PushStatus>();

  /** The command for a gateway now, or undefined (logged) when the registry holds what the edge would refuse. */
  function command(gateway: string): { revision: number; digest: string; payload: Record<string, unknown> } | undefined {
    const g = deps.gateway(gateway);
    if (!g) return undefined;
    const revision = deps.version();
    try {
      const { config } = edgeConfigFor(g, { username: gateway, password: '-' }, { mqtt: { url: 'mqtt://-' } }, deps.profiles, revision);
      return {
        revision, digest: devicesDigest(config),
        payload: { id: `${ID_PREFIX}${revision}`, type: 'set-devices', revision, buses: config.buses, devices: config.devices, ts: new Date(deps.now()).toISOString() },
      };
    } catch (err) {
      log.error({ gateway, err: (err as Error).message }, 'registry devices of this gateway are not a valid edge config: not sent');
      return undefined;
    }
  }

  function send(gateway: string, why: string): void {
    const c = command(gateway);
    if (!c) return;
    const at = births.get(gateway);
    if (at && at.digest === c.digest) return; // it polls exactly this already
    if (at && c.revision <= at.revision) {
      log.warn({ gateway, revision: c.revision, edgeRevision: at.revision }, 'edge reports a revision not older than the registry\'s with other devices: not sent');
      return;
    }
    const body = JSON.stringify(c.payload);
    const tooBig = oversize(c.payload, body);
    if (tooBig) {
      // The edge would ignore it unread (over COMMAND_MAX_BYTES: no ack at all) or refuse it: say so here
      // instead of sending it again at every birth.
      if (sent.get(gateway)?.revision !== c.revision) log.error({ gateway, revision: c.revision, problem: tooBig }, 'set-devices not sent: too large for one command');
      sent.set(gateway, { revision: c.revision, sentAt: new Date(deps.now()).toISOString(), outcome: 'not-sent', message: tooBig });
      return;
    }
    sent.set(gateway, { revision: c.revision, sentAt: new Date(deps.now()).toISOString() });
    deps.publish(topics.cmd(gateway), body)
      .then(() => log.info({ gateway, revision: c.revision, devices: (c.payload.devices as unknown[]).length, why }, 'set-devices sent'))
      .catch((err: Error) => log.warn({ gateway, err: err.message }, 'set-devices not sent; sent again at its next birth'));
  }

  function oversize(payload: Record<string, unknown>, body: string): string | undefined {
    const buses = (payload.buses as unknown[]).length;
    const devices = (payload.devices as unknown[]).length;
    if (devices > SET_DEVICES_MAX_DEVICES) return `${devices} devices; a gateway's edge takes at most ${SET_DEVICES_MAX_DEVICES}: move some to another gateway`;
    if (buses > SET_DEVICES_MAX_BUSES) return `${buses} buses; a gateway's edge takes at most ${SET_DEVICES_MAX_BUSES}`;
    const bytes = Buffer.byteLength(body);
    if (bytes > COMMAND_MAX_BYTES) return `the command is ${bytes} bytes; an edge reads at most ${COMMAND_MAX_BYTES}: move some devices to another gateway`;
    return undefined;
  }

  return {
    changed(gateways) {
      for (const gw of gateways) if (births.has(gw)) send(gw, 'registry changed');
    },
    state(gateway, state) {
      if (!state?.online) return;
      const cfg = state.config;
      if (!cfg || cfg.revision <= 0) {
        births.delete(gateway);
        return;
      }
      births.set(gateway, { revision: cfg.revision, digest: cfg.digest });
      send(gateway, 'birth');
    },
    ack(gateway, ack) {
      const s = sent.get(gateway);
      if (!s || ack.id !== `${ID_PREFIX}${s.revision}`) return;
      s.outcome = String(ack.outcome);
      if (typeof ack.message === 'string') s.message = ack.message;
      if (s.outcome === 'ok') {
        // The edge now polls the list of that revision; a later birth tells the same.
        const c = command(gateway);
        if (c && c.revision === s.revision) births.set(gateway, { revision: c.revision, digest: c.digest });
      } else {
        log.warn({ gateway, revision: s.revision, outcome: s.outcome, message: s.message }, 'edge did not apply set-devices');
      }
    },
    status: () => Object.fromEntries([...sent].map(([gw, s]) => [gw, { ...s }])),
  };
}
