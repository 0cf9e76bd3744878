import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Type, type Static } from '@sinclair/typebox';
import { writeFileAtomic } from '../lib/atomic-file.ts';
import { CsError } from '../lib/errors.ts';
import { check } from '../lib/schema.ts';
import { EdgeBus, EdgeDevice, type EdgeConfig } from './config.ts';
import { EdgeErrors } from './errors.ts';

/**
 * A gateway's buses and devices as the cloud's registry sends them while the edge runs: the
 * `set-devices` command (cmd-set-devices.ts; docs/architecture.md#live-device-updates). What the edge
 * accepted is kept in `${dataDir}/devices.json` (written before it is applied and acknowledged, like
 * mode.json), so a restart keeps it: on start it replaces the config file's buses and devices when its
 * revision is higher than the file's `revision` (a file without one counts as 0).
 */

export const LIVE_CONFIG_FILE = 'devices.json';

/** Arguments of `set-devices` (the envelope is lib/messages.ts Command). */
export const SetDevicesArgs = Type.Object({
  /** Higher than the edge's: applied; equal: already applied (acknowledged ok, nothing done); lower: refused as stale. */
  revision: Type.Integer({ minimum: 1, maximum: Number.MAX_SAFE_INTEGER }),
  buses: Type.Array(EdgeBus, { maxItems: 64 }),
  // A command is at most 64 KiB (commands.ts): some 500 devices.
  devices: Type.Array(EdgeDevice, { maxItems: 500 }),
});
export type SetDevicesArgs = Static<typeof SetDevicesArgs>;

export const LiveConfig = Type.Object({
  revision: Type.Integer({ minimum: 1, maximum: Number.MAX_SAFE_INTEGER }),
  buses: Type.Array(EdgeBus),
  devices: Type.Array(EdgeDevice),
  /** The command that brought it, and when. */
  command: Type.String(),
  receivedAt: Type.String({ format: 'date-time' }),
}, { additionalProperties: false });
export type LiveConfig = Static<typeof LiveConfig>;

/** The persisted buses and devices, or undefined when none were received; throws naming the file when it is corrupt. */
export function readLiveConfig(dataDir: string): LiveConfig | undefined {
  const file = join(dataDir, LIVE_CONFIG_FILE);
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new CsError(EdgeErrors.CONFIG_INVALID, `cannot read ${file}: ${(err as Error).message}`, { file });
  }
  let raw: unknown;
  try { raw = JSON.parse(text); } catch { raw = undefined; }
  const r = check(LiveConfig, raw, { owned: true });
  if (!r.ok) {
    throw new CsError(EdgeErrors.CONFIG_INVALID, `${file} is corrupt: ${r.problems.map((p) => `${p.key}: ${p.message}`).join('; ')}; delete it to use the config file's devices`, { file });
  }
  return r.value;
}

export function writeLiveConfig(dataDir: string, live: LiveConfig): void {
  writeFileAtomic(join(dataDir, LIVE_CONFIG_FILE), JSON.stringify(live) + '\n');
}

/** The config with the buses and devices (and revision) of `live`. */
export function withLive(cfg: EdgeConfig, live: Pick<LiveConfig, 'revision' | 'buses' | 'devices'>): EdgeConfig {
  return { ...cfg, revision: live.revision, buses: live.buses, devices: live.devices };
}

/**
 * What the edge polls, as a short digest of its buses and devices: the birth carries it with the
 * revision, and the cloud resends `set-devices` to an edge whose digest differs from the registry's.
 */
export function devicesDigest(cfg: Pick<EdgeConfig, 'buses' | 'devices'>): string {
  return createHash('sha256').update(JSON.stringify({ buses: cfg.buses, devices: cfg.devices }, sortedKeys)).digest('base64url').slice(0, 22);
}

/** JSON.stringify replacer: objects' keys in sorted order, so equal contents give equal text. */
function sortedKeys(_key: string, value: unknown): unknown {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return value;
  return Object.fromEntries(Object.entries(value).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
}
