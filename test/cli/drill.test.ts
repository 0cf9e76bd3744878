import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { runTyphoonDrill, typhoonScript, DEFAULT_ACK_BOUND_MS } from '../../cli/drill.ts';

let dir: string | undefined;
afterEach(() => { if (dir) rmSync(dir, { recursive: true, force: true }); });

describe('citysteward drill typhoon', () => {
  it('switches every gateway to fast mode within the acknowledgement bound, turns every scripted hazard into a case, opens no duplicate and keeps every emergency deadline within 12 hours (a low-battery case keeps its normal period and is not counted over the cap)', async () => {
    dir = mkdtempSync(join(tmpdir(), 'cs-drill-'));
    const lines: string[] = [];
    const report = await runTyphoonDrill({ dataDir: dir, print: (s) => lines.push(s), pollMs: 500 });
    const out = lines.join('\n');
    expect(report.failures, out).toEqual([]);
    expect(report.missingHazards).toEqual([]);
    expect(report.duplicates).toBe(0);
    expect(report.deadlinesOverCap).toEqual([]);
    expect(report.emergencyCases).toBeGreaterThanOrEqual(13);
    expect(report.gateways).toBe(2);
    // Acknowledgement latency is reported per gateway and checked against the default bound.
    expect(report.ackBoundMs).toBe(DEFAULT_ACK_BOUND_MS);
    expect(report.acks.map((a) => a.gateway).sort()).toEqual(['gw-xz-gongbei', 'gw-xz-jida']);
    expect(report.warningToLastAckMs).toBeGreaterThan(0);
    expect(report.warningToLastAckMs).toBeLessThanOrEqual(DEFAULT_ACK_BOUND_MS);
    expect(out).toMatch(/gw-xz-jida\s+acknowledged \d+ ms after the command/);
    expect(out).toMatch(/scripted hazards without a case\s+0/);
    expect(report.ok).toBe(true);
    expect(out).toMatch(/result\s+PASS/);
  }, 180_000);

  it('passed a drill in which a scripted hazard never became a case and the gateways acknowledged past the bound; now it fails, naming both', async () => {
    dir = mkdtempSync(join(tmpdir(), 'cs-drill-'));
    const lines: string[] = [];
    const report = await runTyphoonDrill({
      dataDir: dir, print: (s) => lines.push(s), pollMs: 500, waitMs: 8000,
      // A bound no real acknowledgement meets, and a step whose hazard cannot happen: the main at
      // XZ-PL-001 is written a normal pressure, yet the script expects a pressure drop there.
      ackBoundMs: 0,
      script: (district, pollMs) => [...typhoonScript(district, pollMs), { say: 'a main that holds', writes: [{ device: 'XZ-PL-001', point: 'pressure_mpa', value: '0.35' }], expect: ['XZ-PL-001/pressure-low'] }],
    });
    const out = lines.join('\n');
    expect(report.ok).toBe(false);
    expect(report.missingHazards).toEqual(['XZ-PL-001/pressure-low']);
    expect(report.failures).toEqual(expect.arrayContaining([
      expect.stringMatching(/^scripted hazards that never became a case within 8000 ms: XZ-PL-001\/pressure-low$/),
      expect.stringMatching(/^last gateway acknowledgement [\d.]+ ms after the warning, over the bound of 0 ms$/),
    ]));
    expect(out).toMatch(/scripted hazards without a case\s+1 \(FAIL: XZ-PL-001\/pressure-low\)/);
    expect(out).toMatch(/result\s+FAIL/);
  }, 180_000);
});
