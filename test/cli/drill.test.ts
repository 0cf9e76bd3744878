import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { runTyphoonDrill } from '../../cli/drill.ts';

let dir: string | undefined;
afterEach(() => { if (dir) rmSync(dir, { recursive: true, force: true }); });

describe('citysteward drill typhoon', () => {
  it('switches every gateway to fast mode on the warning, opens no duplicate case and keeps every emergency deadline within 12 hours', async () => {
    dir = mkdtempSync(join(tmpdir(), 'cs-drill-'));
    const lines: string[] = [];
    const report = await runTyphoonDrill({ dataDir: dir, print: (s) => lines.push(s), pollMs: 500 });
    expect(report.duplicates).toBe(0);
    expect(report.deadlinesOverCap).toEqual([]);
    expect(report.emergencyCases).toBeGreaterThanOrEqual(13);
    expect(report.gateways).toBe(2);
    expect(report.ok).toBe(true);
    expect(lines.join('\n')).toMatch(/result\s+PASS/);
  }, 120_000);
});
