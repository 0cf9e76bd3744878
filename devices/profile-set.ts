import { readdirSync, readFileSync, statSync } from 'node:fs';
import { basename, dirname, extname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse } from 'yaml';
import { ConfigError } from '../lib/config.ts';
import { CsError } from '../lib/errors.ts';
import { silentLogger, type Logger } from '../lib/log.ts';
import { DeviceErrors } from './errors.ts';
import { loadProfile, type Profile } from './profile.ts';

/**
 * The profiles of an install: the built-in ones (devices/profiles/) and, when given, a user directory
 * whose files shadow built-ins of the same id. A file that does not load is kept aside with its
 * problems: a warning while no device uses it, a fatal error (file, key, problem) for the district or
 * edge config that does (see `profileRefProblem`). README "Device profiles".
 */

export const BUILTIN_PROFILE_DIR = join(dirname(fileURLToPath(import.meta.url)), 'profiles');

export interface BrokenProfile {
  /** The id the file declares, else its name without extension. */
  id: string;
  file: string;
  error: ConfigError;
}

/** Profiles by id; `broken` holds the files that did not load, by the id they meant. */
export class ProfileSet extends Map<string, Profile> {
  readonly broken = new Map<string, BrokenProfile>();
  /** The file each loaded profile came from. */
  readonly files = new Map<string, string>();
}

export interface LoadProfilesOptions {
  /** A directory of the user's own profiles (`--profiles DIR`, the `profiles` config key). */
  userDir?: string;
  /** Default: devices/profiles of this install. */
  builtinDir?: string;
  logger?: Logger;
}

function yamlFiles(dir: string): string[] {
  return readdirSync(dir).filter((n) => n.endsWith('.yaml') || n.endsWith('.yml')).sort().map((n) => join(dir, n));
}

/** The id a file that did not load meant, for the message of a device that names it. */
function intendedId(file: string): string {
  try {
    const doc = parse(readFileSync(file, 'utf8')) as { id?: unknown } | null;
    if (doc && typeof doc.id === 'string' && doc.id) return doc.id;
  } catch { /* unreadable or not YAML: fall back to the file name */ }
  return basename(file, extname(file));
}

function asConfigError(err: unknown, file: string): ConfigError {
  if (err instanceof ConfigError) return err;
  return new ConfigError(DeviceErrors.PROFILE_INVALID, file, [{ key: '(file)', message: (err as Error).message }]);
}

/** Loads the built-in profiles and those of `userDir`; the user's shadow built-ins by id (logged at info). */
export function loadProfiles(opts: LoadProfilesOptions | string = {}): ProfileSet {
  const o: LoadProfilesOptions = typeof opts === 'string' ? { builtinDir: opts } : opts;
  const log = (o.logger ?? silentLogger()).child({ part: 'profiles' });
  const set = new ProfileSet();
  const load = (dir: string, user: boolean) => {
    const seen = new Map<string, string>();
    for (const file of yamlFiles(dir)) {
      let profile: Profile;
      try {
        profile = loadProfile(file);
      } catch (err) {
        const error = asConfigError(err, file);
        const id = intendedId(file);
        set.delete(id);
        set.files.delete(id);
        set.broken.set(id, { id, file, error });
        log.warn({ file, profile: id, problems: error.problems }, 'profile not loaded: it is invalid; a device that uses it cannot start');
        continue;
      }
      const twin = seen.get(profile.id);
      if (twin) {
        const error = new ConfigError(DeviceErrors.PROFILE_INVALID, file, [{ key: 'id', message: `"${profile.id}" is also the id of ${twin}` }]);
        set.delete(profile.id);
        set.broken.set(profile.id, { id: profile.id, file, error });
        log.warn({ file, other: twin, profile: profile.id }, 'two profiles with one id in one directory: neither is used');
        continue;
      }
      seen.set(profile.id, file);
      if (user && (set.has(profile.id) || set.broken.has(profile.id))) {
        log.info({ profile: profile.id, file, builtin: set.files.get(profile.id) ?? set.broken.get(profile.id)?.file }, 'user profile shadows the built-in one');
      }
      set.broken.delete(profile.id);
      set.set(profile.id, profile);
      set.files.set(profile.id, file);
    }
  };
  load(o.builtinDir ?? BUILTIN_PROFILE_DIR, false);
  if (o.userDir !== undefined) {
    const dir = resolve(o.userDir);
    let isDir = false;
    try { isDir = statSync(dir).isDirectory(); } catch { /* reported below */ }
    if (!isDir) throw new CsError(DeviceErrors.PROFILE_DIR_UNREADABLE, `profile directory ${dir} does not exist or is not a directory`, { dir });
    load(dir, true);
  }
  return set;
}

/**
 * Why a reference to profile `id` cannot be used, or undefined when it can: an invalid file is named
 * with its own problems, an unknown id with the known ones.
 */
export function profileRefProblem(profiles: Map<string, Profile>, id: string): string | undefined {
  if (profiles.has(id)) return undefined;
  const broken = profiles instanceof ProfileSet ? profiles.broken.get(id) : undefined;
  if (broken) {
    return `profile "${id}" is invalid (${broken.file}: ${broken.error.problems.map((p) => `${p.key}: ${p.message}`).join('; ')})`;
  }
  return `unknown profile "${id}" (known: ${[...profiles.keys()].join(', ') || 'none'})`;
}
