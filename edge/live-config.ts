import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Type, type Static } from '@sinclair/typebox';
import { writeFileAtomic } from '../lib/atomic-file.ts';
import { CsError } from '../lib/errors.ts';
import { check } from '../lib/schema.ts';
import { devicesDigest, EdgeBus, EdgeDevice, type EdgeConfig } from './config.ts';
import { SET_DEVICES_MAX_BUSES, SET_DEVICES_MAX_DEVICES } from '../lib/edge-config.ts';

export { devicesDigest };
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
  buses: Type.Array(EdgeBus, { maxItems: SET_DEVICES_MAX_BUSES }),
  // A command is at most COMMAND_MAX_BYTES (commands.ts): some 500 devices.
  devices: Type.Array(EdgeDevice, { maxItems: SET_DEVICES_MAX_DEVICES }),
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
