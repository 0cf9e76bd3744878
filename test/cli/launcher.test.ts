import { mkdirSync, mkdtempSync, readFileSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildServer } from '../../bin/build-server.js';
import { ROOT, buildStatus, selectRun } from '../../bin/build-state.js';
import { COMMAND_V8_FLAGS, applyCommandFlags } from '../../bin/runtime-flags.js';
import { runCli, runCliOnce } from '../helpers/process.ts';

describe('the launcher runs the ahead-of-time build only while it is made from the sources as they are', () => {
  let root: string;
  const out = () => join(root, 'dist');
  const dep = () => join(root, 'lib', 'dep.ts');

  beforeAll(async () => {
    root = mkdtempSync(join(tmpdir(), 'cs-launcher-'));
    mkdirSync(join(root, 'cli'));
    mkdirSync(join(root, 'lib'));
    writeFileSync(join(root, 'cli', 'main.ts'), "import { answer } from '../lib/dep.ts';\nconsole.log(answer);\n");
    writeFileSync(dep(), 'export const answer: number = 42;\n');
    await buildServer({ root, outdir: out() });
  });
  afterAll(() => rmSync(root, { recursive: true, force: true }));

  it('selects a fresh build', () => {
    expect(selectRun({}, out(), root)).toEqual({ run: 'build', entry: join(out(), 'citysteward.js') });
  });

  it('falls back to the sources when one of them changed since the build, and CITYSTEWARD_RUN=build refuses to run it', () => {
    const before = readFileSync(dep(), 'utf8');
    try {
      writeFileSync(dep(), 'export const answer: number = 43;\n');
      expect(selectRun({}, out(), root)).toEqual({ run: 'source', reason: `the sources changed since the build in ${out()}` });
      expect(selectRun({ CITYSTEWARD_RUN: 'build' }, out(), root).error).toMatch(/^CITYSTEWARD_RUN=build: the sources changed since the build in .*; run `npm run build:server`$/);
    } finally {
      writeFileSync(dep(), before);
    }
  });

  it('judges by content, not by time: a source touched but unchanged keeps the build fresh', () => {
    utimesSync(dep(), new Date(), new Date(Date.now() + 60_000));
    expect(buildStatus(out(), root).entry).toBe(join(out(), 'citysteward.js'));
  });

  it('calls a build stale when a source it was made from is gone', () => {
    const before = readFileSync(dep(), 'utf8');
    rmSync(dep());
    try {
      expect(buildStatus(out(), root).stale).toMatch(/^a source of the build is gone \(.*dep\.ts\)$/);
    } finally {
      writeFileSync(dep(), before);
    }
  });

  it('runs the sources when there is no build, or when CITYSTEWARD_RUN=source', () => {
    expect(selectRun({}, join(root, 'nowhere'), root)).toEqual({ run: 'source', reason: `no build in ${join(root, 'nowhere')}` });
    expect(selectRun({ CITYSTEWARD_RUN: 'source' }, out(), root)).toEqual({ run: 'source' });
    expect(selectRun({ CITYSTEWARD_RUN: 'fast' }, out(), root).error).toBe("CITYSTEWARD_RUN must be auto, build or source, not 'fast'");
  });
});

describe('the citysteward command built ahead of time', () => {
  let dir: string;
  beforeAll(async () => {
    dir = mkdtempSync(join(ROOT, '.tmp-launcher-'));
    await buildServer({ outdir: join(dir, 'dist') });
  }, 60_000);
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  const built = () => ({ CITYSTEWARD_RUN: 'build', CITYSTEWARD_BUILD_DIR: join(dir, 'dist'), CS_LOG_FORMAT: 'json' });

  it('runs the gateway from the build (CITYSTEWARD_RUN=build)', async () => {
    const gw = runCli(['gateway', '--data-dir', join(dir, 'data'), '--mqtt-port', '0', '--host', '127.0.0.1'], built());
    try {
      await gw.waitFor(/gateway: MQTT listening on mqtt:\/\/127\.0\.0\.1:\d+/);
    } finally {
      await gw.stop();
    }
  });

  it('finds the data that lives beside the sources (the built-in device profiles) from the build', async () => {
    const r = await runCliOnce(['cluster', 'init', '--out', join(dir, 'config'), '--credentials-dir', join(dir, 'creds'), '--district', join(ROOT, 'deploy', 'district.yaml')],
      built());
    expect(r.code, r.output).toBe(0);
    expect(readFileSync(join(dir, 'config', 'edge-gw-xz-jida.yaml'), 'utf8')).toContain('profile: ');
  });

  it('refuses to start with CITYSTEWARD_RUN=build when there is no build, saying how to make one', async () => {
    const r = await runCliOnce(['--help'], { CITYSTEWARD_RUN: 'build', CITYSTEWARD_BUILD_DIR: join(dir, 'none') });
    expect(r.code).toBe(1);
    expect(r.output).toContain(`citysteward: CITYSTEWARD_RUN=build: no build in ${join(dir, 'none')}; run \`npm run build:server\``);
  });
});

describe('the V8 flags the launcher sets per command', () => {
  it('keeps the young generation from growing in the gateway, and sets nothing for the other commands', () => {
    expect(COMMAND_V8_FLAGS.gateway).toEqual(['--semi-space-growth-factor=1']);
    expect(applyCommandFlags('cloud')).toEqual([]);
    expect(applyCommandFlags(undefined)).toEqual([]);
    expect(applyCommandFlags('__proto__')).toEqual([]);
  });
});
