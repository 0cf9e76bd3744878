// Is the ahead-of-time build of the server code (bin/build-server.js) there and made from the sources as
// they are now? Read by the launcher (bin/citysteward.js) before anything else is loaded, so it uses
// node: modules only. A build is fresh when the SHA-256 of the content of every file it was made from
// (its manifest lists them, with the build script and tsconfig.json) is the digest the build recorded:
// an edited, added-then-imported or deleted source makes it stale whatever the files' times say.
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = fileURLToPath(new URL('..', import.meta.url));
/** Where `npm run build:server` writes; CITYSTEWARD_BUILD_DIR moves it (tests). */
export const buildDir = (env = process.env) => resolve(ROOT, env.CITYSTEWARD_BUILD_DIR || 'dist');
export const MANIFEST = 'build.json';

/** SHA-256 over the files' paths (relative to `root`, sorted) and contents. Throws when one is missing. */
export function sourceDigest(root, files) {
  const hash = createHash('sha256');
  for (const f of [...files].sort()) hash.update(f).update('\0').update(readFileSync(join(root, f))).update('\0');
  return hash.digest('hex');
}

/**
 * `{ entry }` (the built CLI's path) when the build in `dir` is fresh, else `{ stale: reason }`.
 * `root` is the source tree the manifest's paths are relative to.
 */
export function buildStatus(dir = buildDir(), root = ROOT) {
  let manifest;
  try {
    manifest = JSON.parse(readFileSync(join(dir, MANIFEST), 'utf8'));
  } catch {
    return { stale: `no build in ${dir}` };
  }
  let digest;
  try {
    digest = sourceDigest(root, manifest.inputs);
  } catch (e) {
    return { stale: `a source of the build is gone (${e.code === 'ENOENT' ? e.path : e.message})` };
  }
  if (digest !== manifest.digest) return { stale: `the sources changed since the build in ${dir}` };
  return { entry: join(dir, manifest.entry) };
}

/**
 * What the launcher runs, by CITYSTEWARD_RUN: `auto` (default) the build when fresh, else the sources
 * through tsx; `source` always the sources; `build` the build, or an error saying why it cannot.
 */
export function selectRun(env = process.env, dir = buildDir(env), root = ROOT) {
  const mode = env.CITYSTEWARD_RUN || 'auto';
  if (mode === 'source') return { run: 'source' };
  if (mode !== 'auto' && mode !== 'build') return { error: `CITYSTEWARD_RUN must be auto, build or source, not '${mode}'` };
  const status = buildStatus(dir, root);
  if (status.entry) return { run: 'build', entry: status.entry };
  if (mode === 'build') return { error: `CITYSTEWARD_RUN=build: ${status.stale}; run \`npm run build:server\`` };
  return { run: 'source', reason: status.stale };
}
