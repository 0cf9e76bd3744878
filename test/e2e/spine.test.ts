import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { buildDemo, type Demo } from '../../cli/demo.ts';
import { simSet } from '../../cli/run-sim.ts';
import { DEMO_DISTRICT } from '../../cli/demo.ts';
import { eventually } from '../helpers/process.ts';

/**
 * The spine, end to end on loopback with real servers: Modbus TCP simulators, two edge gateways,
 * the Aedes broker with authentication, the Fastify cloud on an SQLite file.
 */

interface CaseJson { id: string; device: string; hazard: string; severity: string; unit: string; state: string; deadline: string; openedAt: string; breachCount: number; class: string }

const POLL_MS = 1000;
let demo: Demo | undefined;
let dir: string | undefined;

afterEach(async () => {
  await demo?.stop();
  demo = undefined;
  if (dir) rmSync(dir, { recursive: true, force: true });
});

async function cases(d: Demo, query = ''): Promise<CaseJson[]> {
  const res = await d.cloud.app.inject({ url: `/api/cases?limit=1000${query}`, headers: { authorization: `Bearer ${d.tokens.operator}` } });
  expect(res.statusCode).toBe(200);
  return (res.json() as { items: CaseJson[] }).items;
}

describe('sensors to cases, end to end', () => {
  it('a water level set above its threshold through a real Modbus write opens exactly one case within two poll intervals, and a higher one updates it', async () => {
    dir = mkdtempSync(join(tmpdir(), 'cs-e2e-'));
    demo = buildDemo({ dataDir: dir, mqttPort: 0, httpPort: 0, scenarios: false, pollMs: POLL_MS, healthMs: 500 });
    await demo.start();
    const d = demo;

    // Every device reports through its edge, broker and cloud.
    await eventually(async () => {
      const res = await d.cloud.app.inject({ url: '/api/devices', headers: { authorization: `Bearer ${d.tokens.operator}` } });
      const list = (res.json() as { items: { id: string; link: string }[] }).items;
      return list.length === 30 && list.every((x) => x.link === 'online');
    }, 20_000);
    expect(await cases(d)).toEqual([]);

    const wroteAt = Date.now();
    await simSet({ districtFile: DEMO_DISTRICT, dataDir: dir, device: 'XZ-WL-002', assignment: 'level_m=0.9' });
    const [opened] = await eventually(async () => {
      const list = (await cases(d)).filter((c) => c.device === 'XZ-WL-002');
      return list.length ? list : undefined;
    }, 10_000, 50);
    expect(opened).toMatchObject({ hazard: 'waterlogging', severity: 'major', class: 'urgent', unit: 'xz-drainage', state: 'dispatched' });
    expect(Date.parse(opened.openedAt) - wroteAt).toBeLessThanOrEqual(2 * POLL_MS);
    // Urgent: due at most 12 hours after registration, as an absolute ISO instant.
    expect(new Date(opened.deadline).toISOString()).toBe(opened.deadline);
    expect(Date.parse(opened.deadline) - Date.parse(opened.openedAt)).toBeLessThanOrEqual(12 * 3600_000);

    await simSet({ districtFile: DEMO_DISTRICT, dataDir: dir, device: 'XZ-WL-002', assignment: 'level_m=0.97' });
    const updated = await eventually(async () => {
      const list = (await cases(d)).filter((c) => c.device === 'XZ-WL-002');
      return list.length === 1 && list[0].severity === 'critical' ? list[0] : undefined;
    }, 10_000, 50);
    expect(updated.id).toBe(opened.id);
    expect(updated.breachCount).toBeGreaterThan(opened.breachCount);
    expect((await cases(d)).filter((c) => c.device === 'XZ-WL-002')).toHaveLength(1);

    // The readings are stored and served per device.
    const res = await d.cloud.app.inject({ url: '/api/devices/XZ-WL-002/readings?limit=5', headers: { authorization: `Bearer ${d.tokens.operator}` } });
    expect(res.statusCode).toBe(200);
    expect(JSON.stringify(res.json())).toContain('0.97');

    // The edge's health reaches the device API: the slave's breaker and counters, the outbox depth.
    const health = await eventually(async () => {
      const r = await d.cloud.app.inject({ url: '/api/devices/XZ-WL-002', headers: { authorization: `Bearer ${d.tokens.operator}` } });
      const h = (r.json() as { health: { gatewayMode: string; outboxDepth: number; slave: { breaker: string; ok: number } | null } | null }).health;
      return h?.slave && h.slave.ok > 0 ? h : undefined;
    }, 10_000);
    expect(health).toMatchObject({ gatewayMode: 'normal', slave: { breaker: 'closed' } });
    expect(health.outboxDepth).toBeGreaterThanOrEqual(0);

    // The demo wrote a token for each role and each unit's crew.
    const tokens = JSON.parse(readFileSync(join(dir, 'demo-tokens.json'), 'utf8'));
    expect(Object.keys(tokens).sort()).toEqual(['admin', 'commander', 'crew:iot-ops', 'crew:xz-drainage', 'crew:xz-municipal', 'crew:zh-gas', 'crew:zh-water', 'operator', 'verifier']);
    const crew = await d.cloud.app.inject({ url: '/api/cases', headers: { authorization: `Bearer ${tokens['crew:zh-water']}` } });
    expect((crew.json() as { items: unknown[] }).items).toEqual([]);
  });
});
