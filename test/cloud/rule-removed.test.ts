import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { buildCloud } from '../../cloud/app.ts';
import { topics } from '../../lib/topics.ts';
import { BACKENDS, profiles, reading, type Backend } from './fixtures.ts';
import { configApi, configDistrict, GW, HOUR, T0, startCloud, type StartedCloud } from './harness.ts';

/**
 * Regression: a rule removed (or every rule of a hazard) through the configuration API left the device's
 * active alarm in place for ever, since only a rule of that hazard could clear it. Now the device's next
 * reading clears it; its case stays open and runs its workflow (cloud/rules.ts setRuleSet).
 */
describe.each(BACKENDS)('an alarm whose rules are removed, on $backend', ({ backend, skip }: { backend: Backend; skip: boolean }) => {
  describe.skipIf(skip)(backend, () => {
    let h: StartedCloud;
    let t = T0;
    let seq = 0;
    beforeEach(async () => {
      t = T0;
      h = await startCloud(backend, { district: configDistrict, profiles, now: () => t, escalation: { tickMs: HOUR } });
    });
    afterEach(async () => { await h?.stop(); });
    const { get, put } = configApi(() => h);
    const send = async (device: string, values: Record<string, unknown>) => {
      t += 1000;
      return await h.cloud.ingest(GW, topics.up(GW, device), reading(device, ++seq, t, values)) as { status: string; cases: { caseId: string }[] };
    };
    const alarms = async (device: string) => (await h.cloud.app.inject({ url: `/api/alarms?device=${device}`, headers: { authorization: `Bearer ${h.operator}` } })).json().items as { hazard: string; clearedAt: string | null; caseId: string | null }[];

    it('clears the alarm at the device\'s next reading once no rule watches its hazard, and leaves its case open', async () => {
      const raised = await send('WL-T-0001', { level_m: 0.9, battery_pct: 10 });
      expect(raised.cases.length).toBeGreaterThan(0);
      expect((await alarms('WL-T-0001')).filter((a) => a.clearedAt === null).map((a) => a.hazard).sort()).toEqual(['low-battery', 'waterlogging']);

      const { version, document } = await get('rules');
      document.kinds['water-level'] = document.kinds['water-level'].filter((r: { hazard?: string }) => r.hazard !== 'waterlogging');
      expect((await put('rules', document, version)).statusCode).toBe(200);

      // Still high water and a flat battery: the battery rule still speaks and holds its alarm.
      await send('WL-T-0001', { level_m: 0.9, battery_pct: 10 });
      const after = await alarms('WL-T-0001');
      expect(after.filter((a) => a.clearedAt === null).map((a) => a.hazard)).toEqual(['low-battery']);
      const flood = after.find((a) => a.hazard === 'waterlogging')!;
      expect(flood.clearedAt).not.toBeNull();
      const c = (await h.cloud.app.inject({ url: `/api/cases/${flood.caseId}`, headers: { authorization: `Bearer ${h.operator}` } })).json();
      expect(c.state).not.toBe('closed');
    });

    it('clears it after a restart too: the alarm seeded at start under the rules in force', async () => {
      await send('WL-T-0003', { level_m: 0.9 });
      const { version, document } = await get('rules');
      document.kinds['water-level'] = document.kinds['water-level'].filter((r: { hazard?: string }) => r.hazard !== 'waterlogging');
      expect((await put('rules', document, version)).statusCode).toBe(200);
      await h.cloud.stop();
      const again = await buildCloud({ db: h.db, district: configDistrict, profiles, now: () => t, escalation: { tickMs: HOUR } });
      await again.start();
      try {
        t += 1000;
        await again.ingest(GW, topics.up(GW, 'WL-T-0003'), reading('WL-T-0003', ++seq, t, { level_m: 0.9 }));
        const rows = await again.app.inject({ url: '/api/alarms?device=WL-T-0003', headers: { authorization: `Bearer ${await again.tokens.create('operator')}` } });
        expect(rows.json().items.filter((a: { clearedAt: string | null }) => a.clearedAt === null)).toEqual([]);
      } finally {
        await again.stop();
      }
    });

    it('keeps the alarm while another rule of its hazard remains (only its own tier was removed)', async () => {
      await send('WL-T-0002', { level_m: 0.9 });
      const { version, document } = await get('rules');
      document.kinds['water-level'] = document.kinds['water-level'].filter((r: { id: string }) => r.id !== 'level-tier2');
      expect((await put('rules', document, version)).statusCode).toBe(200);
      await send('WL-T-0002', { level_m: 0.9 });
      expect((await alarms('WL-T-0002')).filter((a) => a.clearedAt === null).map((a) => a.hazard)).toEqual(['waterlogging']);
    });
  });
});
