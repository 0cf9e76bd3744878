#!/usr/bin/env node
// `npm run build:server` (run by `npm install` through `prepare`): the server code bundled ahead of time
// into dist/, so that production processes run plain JavaScript instead of the TypeScript sources
// through tsx, whose loader keeps a thread with a V8 isolate of its own for the life of the process
// (about 34 MiB of RSS; docs/architecture.md#broker-memory). The launcher (bin/citysteward.js) runs the
// build only while it is fresh (bin/build-state.js); tests and development run the sources.
//
// esbuild is tsx's own (tsx is a dependency, and it pins esbuild), so nothing is added to install.
// Packages stay external (loaded from node_modules as they are); every dynamic import() of ours becomes a
// chunk of its own, loaded when the command needs it. `import.meta.url` in a source file is rewritten to
// that file's own URL (relative to the chunk), so paths to data beside the sources (profiles, districts,
// the web build) resolve as when running the sources.
import { createRequire } from 'node:module';
import { readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join, relative, resolve, sep } from 'node:path';
import { pathToFileURL } from 'node:url';
import { MANIFEST, ROOT, buildDir, sourceDigest } from './build-state.js';

const require = createRequire(import.meta.url);
const esbuild = require(require.resolve('esbuild', { paths: [require.resolve('tsx')] }));

/** Files besides the bundle's inputs whose change makes a build stale. */
const ALSO = ['bin/build-server.js', 'tsconfig.json'];

/** Rewrites `import.meta.url` in our .ts files to their own location, relative to `outdir`. */
function ownUrl(outdir) {
  return {
    name: 'own-import-meta-url',
    setup(build) {
      build.onLoad({ filter: /\.ts$/ }, (args) => {
        if (args.path.split(sep).includes('node_modules')) return undefined;
        const text = readFileSync(args.path, 'utf8');
        if (!text.includes('import.meta.url')) return { contents: text, loader: 'ts' };
        const rel = relative(outdir, args.path).split(sep).join('/');
        return { contents: text.replaceAll('import.meta.url', `new URL(${JSON.stringify(rel)}, import.meta.url).href`), loader: 'ts' };
      });
    },
  };
}

/**
 * Bundles `entryPoints` ({ outputName: sourcePath relative to `root` }) into `outdir` (replaced whole,
 * never half-written) with a manifest of the inputs' digest. Returns the manifest.
 */
export async function buildServer({ root = ROOT, outdir = buildDir(), entryPoints = { citysteward: 'cli/main.ts' }, entry = 'citysteward.js' } = {}) {
  outdir = resolve(root, outdir);
  const tmp = `${outdir}.tmp-${process.pid}`;
  rmSync(tmp, { recursive: true, force: true });
  const result = await esbuild.build({
    absWorkingDir: root,
    entryPoints,
    outdir: tmp,
    bundle: true,
    splitting: true,
    format: 'esm',
    platform: 'node',
    target: 'node20',
    packages: 'external',
    metafile: true,
    sourcemap: 'linked',
    sourcesContent: false,
    logLevel: 'warning',
    // The chunks live in `outdir`, not `tmp`: the rewritten URLs must point from there.
    plugins: [ownUrl(outdir)],
  });
  const inputs = [...Object.keys(result.metafile.inputs), ...ALSO.filter((f) => root === ROOT)];
  const manifest = { entry, digest: sourceDigest(root, inputs), inputs, builtAt: new Date().toISOString() };
  writeFileSync(join(tmp, MANIFEST), `${JSON.stringify(manifest, null, 1)}\n`);
  const old = `${outdir}.old-${process.pid}`;
  try { renameSync(outdir, old); } catch (e) { if (e.code !== 'ENOENT') throw e; }
  renameSync(tmp, outdir);
  rmSync(old, { recursive: true, force: true });
  return manifest;
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const manifest = await buildServer();
  console.log(`server code built into ${relative(process.cwd(), buildDir()) || '.'} (${manifest.inputs.length} sources)`);
}
