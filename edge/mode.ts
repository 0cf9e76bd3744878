import { readFileSync } from 'node:fs';
import { writeFileAtomic } from '../lib/atomic-file.ts';
import { join } from 'node:path';
import { Type, type Static } from '@sinclair/typebox';
import { CsError } from '../lib/errors.ts';
import { check } from '../lib/schema.ts';
import { PollModeT } from '../lib/vocabulary.ts';
import { EdgeErrors } from './errors.ts';

/**
 * The gateway's operating mode, kept in `${dataDir}/mode.json` so that it survives a restart:
 * a gateway told to poll fast for a typhoon must not fall back to normal because its power
 * blinked (docs/domain.md#emergency-mode). Written like seq.json: temporary file, fsync, rename.
 */
export const EdgeMode = Type.Object({
  mode: PollModeT,
  /** Poll interval of every device in fast mode (a device that polls faster keeps its own). */
  pollMs: Type.Optional(Type.Integer({ minimum: 100 })),
  /** Heartbeat (report-by-exception) in fast mode. */
  heartbeatMs: Type.Optional(Type.Integer({ minimum: 100 })),
  /** Fast mode ends by itself at this instant (the cloud may be unreachable when the typhoon has passed). */
  until: Type.Optional(Type.String({ format: 'date-time' })),
  /** When and by which command the mode was set. */
  since: Type.String({ format: 'date-time' }),
  command: Type.Optional(Type.String()),
}, { additionalProperties: false });
export type EdgeMode = Static<typeof EdgeMode>;

export const MODE_FILE = 'mode.json';

export function readMode(dataDir: string, now: number): EdgeMode {
  const file = join(dataDir, MODE_FILE);
  const normal: EdgeMode = { mode: 'normal', since: new Date(now).toISOString() };
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return normal;
    throw new CsError(EdgeErrors.MODE_STORE, `cannot read ${file}: ${(err as Error).message}`, { file });
  }
  let raw: unknown;
  try { raw = JSON.parse(text); } catch { raw = undefined; }
  const r = check(EdgeMode, raw);
  if (!r.ok) throw new CsError(EdgeErrors.MODE_STORE, `${file} is corrupt: ${r.problems.map((p) => `${p.key}: ${p.message}`).join('; ')}; delete it to return to normal mode`, { file });
  if (r.value.until && Date.parse(r.value.until) <= now) return normal;
  return r.value;
}

export function writeMode(dataDir: string, mode: EdgeMode): void {
  writeFileAtomic(join(dataDir, MODE_FILE), JSON.stringify(mode) + '\n');
}
