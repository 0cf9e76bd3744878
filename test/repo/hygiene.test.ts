import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

/**
 * The house rules that a review checks by reading, checked by the suite instead: one job per file,
 * each vocabulary defined once (lib/vocabulary.ts), cloud/ independent of edge/, and no comment that
 * cites a document outside the repository (docs/ holds the design knowledge).
 */
const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const SOURCE_DIRS = ['bench', 'cli', 'cloud', 'devices', 'edge', 'flows', 'gateway', 'lib'];
/** The web application's build output (cloud/web/dist) is generated, not written. */
const EXEMPT = [/^cloud\/web\/dist\//];

function walk(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const p = join(dir, name);
    if (name === 'node_modules' || name.startsWith('.')) return [];
    return statSync(p).isDirectory() ? walk(p) : [p];
  });
}

const sources = SOURCE_DIRS.flatMap((d) => walk(join(ROOT, d)))
  .map((p) => relative(ROOT, p))
  .filter((p) => /\.(ts|js|vue)$/.test(p) && !EXEMPT.some((re) => re.test(p)));
const text = (p: string) => readFileSync(join(ROOT, p), 'utf8');

describe('the house', () => {
  it('no source file outside test/ (Vue components included) is over 400 lines', () => {
    const long = sources.map((p) => [p, text(p).split('\n').length] as const).filter(([, n]) => n > 400);
    expect(long).toEqual([]);
  });

  it('cloud/ imports nothing from edge/ (wire schemas live in lib/messages.ts)', () => {
    const offenders = sources.filter((p) => p.startsWith('cloud/') && /from '(\.\.\/)+edge\//.test(text(p)));
    expect(offenders).toEqual([]);
  });

  it('the broker and the edge import nothing from cloud/, and the broker nothing from edge/ (shared pieces live in lib/ and devices/)', () => {
    const offenders = sources.filter((p) => (p.startsWith('gateway/') && /from '(\.\.\/)+(cloud|edge)\//.test(text(p)))
      || (p.startsWith('edge/') && /from '(\.\.\/)+cloud\//.test(text(p))));
    expect(offenders).toEqual([]);
  });

  it('severities, case classes and modes are spelt out only in lib/vocabulary.ts', () => {
    const patterns = [
      /'info',\s*'minor',\s*'major',\s*'critical'/,
      /'urgent',\s*'routine',\s*'device-health'/,
      /Type\.Literal\('(urgent|routine|device-health|info|minor|major|critical)'\)/,
      /'normal'\s*\|\s*'(fast|emergency)'/,
      /Type\.Literal\('(fast|emergency)'\)/,
    ];
    const offenders = sources.filter((p) => p !== 'lib/vocabulary.ts' && patterns.some((re) => re.test(text(p))));
    expect(offenders).toEqual([]);
  });

  it('case states and the fast-poll default are spelt out only in lib/vocabulary.ts', () => {
    const patterns = [
      /'closed',\s*'void'/,
      /'void',\s*'closed'/,
      /'closed'\s*&&[^\n]*'void'/,
      /'registered',\s*'dispatched'/,
      /'handled',\s*'deferred'/,
      /(FAST_POLL_MS\s*=|fastPollMs\s*\?\?|mode: 'fast',\s*pollMs:)\s*\d/i,
    ];
    // The released migrations' predicate stays word for word (test/cloud/workflow.test.ts holds it to FINAL_STATES).
    const released = (p: string) => p === 'cloud/db/migrations.ts'
      ? text(p).replace("export const OPEN_CASE_PREDICATE = sql<boolean>`state not in ('closed', 'void')`;", '') : text(p);
    const offenders = sources.filter((p) => p !== 'lib/vocabulary.ts' && patterns.some((re) => re.test(released(p))));
    expect(offenders).toEqual([]);
  });

  it('no file cites a document outside the repository', () => {
    const files = [...sources, ...walk(join(ROOT, 'test')).map((p) => relative(ROOT, p)), 'README.md', ...walk(join(ROOT, 'docs')).map((p) => relative(ROOT, p)),
      ...walk(join(ROOT, 'devices')).map((p) => relative(ROOT, p)).filter((p) => p.endsWith('.yaml'))];
    const offenders = files.filter((p) => p !== 'test/repo/hygiene.test.ts' && /DESIGN\.md|\.\.\/shared\//.test(text(p)));
    expect(offenders).toEqual([]);
  });
});
