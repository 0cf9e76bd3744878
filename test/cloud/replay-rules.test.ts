import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { topics } from '../../lib/topics.ts';
import { buildCloud, type Cloud } from '../../cloud/app.ts';
import { defaultRuleSet, type RuleSet } from '../../cloud/rules.ts';
import { openDatabase } from '../../cloud/db/database.ts';
import { district, freshDatabase, profiles } from './fixtures.ts';
import type { DbOptions } from '../../cloud/app.ts';

/**
 * Replayed (historical) readings are judged by the configured rule set, the same one live readings
 * meet (overrides, disabled rules, range rules), statelessly; historical data alone opens no case.
 */

const T0 = Date.parse('2026-11-25T02:00:00Z');
const WL = { gw: 'gw-xz-jida', id: 'XZ-WL-001' };
const MH = { gw: 'gw-xz-gongbei', id: 'XZ-MH-001' };

function payload(device: string, seq: number, values: Record<string, unknown>, historical = false): Buffer {
  return Buffer.from(JSON.stringify({ seq, ts: new Date(T0 + seq * 1000).toISOString(), device, values, quality: 'good', historical }));
}

describe('replayed readings under the configured rules', () => {
  let db: DbOptions;
  let drop: () => Promise<void>;
  let cloud: Cloud | undefined;
  let clock = T0;

  beforeEach(async () => {
    ({ db, drop } = await freshDatabase('sqlite'));
    clock = T0;
  });
  afterEach(async () => {
    await cloud?.stop();
    cloud = undefined;
    await drop();
  });

  async function start(rules: RuleSet): Promise<Cloud> {
    cloud = await buildCloud({ db, district, profiles, rules, now: () => clock, escalation: false, emergency: false });
    await cloud.start();
    return cloud;
  }

  async function cases() {
    const d = openDatabase(db);
    try {
      return await d.db.selectFrom('cases').selectAll().orderBy('id').execute();
    } finally {
      await d.close();
    }
  }

  it('a replayed reading that breaches only a rule disabled for the device updates no open case', async () => {
    const set = defaultRuleSet(profiles);
    set.devices[MH.id] = [{ id: 'gas-h2s', disabled: true }];
    const c = await start(set);
    const t = topics.up(MH.gw, MH.id);
    // Methane opens the gas case; hydrogen sulphide is not judged at this manhole.
    await c.ingest(MH.gw, t, payload(MH.id, 10, { gas_ch4_ppm: 6000, gas_h2s_ppm: 0.5 }));
    clock += 60_000;
    const live = await c.ingest(MH.gw, t, payload(MH.id, 11, { gas_ch4_ppm: 20, gas_h2s_ppm: 30 }));
    expect(live).toMatchObject({ status: 'stored', cases: [] });
    const replay = await c.ingest(MH.gw, t, payload(MH.id, 5, { gas_ch4_ppm: 20, gas_h2s_ppm: 30 }, true));
    expect(replay).toMatchObject({ status: 'stored', cases: [], alarms: [] });
    expect(await cases()).toMatchObject([{ hazard: 'gas', breach_count: 1 }]);
  });

  it('a replayed reading is judged by the device\'s override, as a live one is', async () => {
    const set = defaultRuleSet(profiles);
    set.devices[WL.id] = [{ id: 'level-tier1', value: 0.3 }];
    const c = await start(set);
    const t = topics.up(WL.gw, WL.id);
    expect(await c.ingest(WL.gw, t, payload(WL.id, 10, { level_m: 0.4 }))).toMatchObject({ cases: [{ action: 'opened' }] });
    // 0.35 m is over this device's tier 1 (0.3 m), though under the profile's 0.7 m.
    const replay = await c.ingest(WL.gw, t, payload(WL.id, 5, { level_m: 0.35 }, true));
    expect(replay).toMatchObject({ status: 'stored', cases: [{ action: 'updated' }], alarms: [] });
    // Counted on the open case; the older replayed value does not overwrite the live one's.
    expect(await cases()).toMatchObject([{ hazard: 'waterlogging', breach_count: 2, last_value: '0.4' }]);
  });

  it('a replayed implausible value is judged by the range rule and does not raise the open case to critical', async () => {
    const c = await start(defaultRuleSet(profiles));
    const t = topics.up(WL.gw, WL.id);
    await c.ingest(WL.gw, t, payload(WL.id, 10, { level_m: 0.9 }));
    // 50 m is outside what the gauge can report (implausible): not a tier-3 flood.
    const replay = await c.ingest(WL.gw, t, payload(WL.id, 5, { level_m: 50 }, true));
    expect(replay).toMatchObject({ status: 'stored', cases: [] });
    expect(await cases()).toMatchObject([{ hazard: 'waterlogging', severity: 'major', breach_count: 1 }]);
  });

  it('a replayed breach alone opens no case and moves no hold time, hysteresis or alarm', async () => {
    const c = await start(defaultRuleSet(profiles));
    const t = topics.up(MH.gw, MH.id);
    // A replayed tilt, then a live one: the live one starts its own hold (2 s), unhelped by the replay.
    expect(await c.ingest(MH.gw, t, payload(MH.id, 1, { tilt_deg: 30 }, true))).toMatchObject({ cases: [], alarms: [] });
    expect(await c.ingest(MH.gw, t, payload(MH.id, 20, { tilt_deg: 30 }))).toMatchObject({ cases: [], alarms: [] });
    expect(await cases()).toEqual([]);
    expect(await c.ingest(MH.gw, t, payload(MH.id, 23, { tilt_deg: 30 }))).toMatchObject({ cases: [{ action: 'opened' }], alarms: [{ action: 'raised' }] });
  });

  it('a per-device override with a string limit, a point its device lacks and a misspelt key is refused, not kept as a rule that never fires', async () => {
    const set = defaultRuleSet(profiles);
    set.devices = { [WL.id]: [{ id: 'level-tier1', value: '0.5', point: 'no_such_point', valeu: 0.5 } as never] };
    const err = await buildCloud({ db, district, profiles, rules: set, escalation: false, emergency: false }).then(() => undefined, (e: unknown) => e);
    expect(err).toMatchObject({ code: 'CS_CLOUD_RULES_INVALID' });
    const message = (err as Error).message;
    expect(message).toContain(`devices.${WL.id}[0].valeu: unknown key`);
    expect(message).toContain(`devices.${WL.id}[0].value: expected number or boolean, got "0.5"`);
    expect(message).toContain(`devices.${WL.id}[0].point: device "${WL.id}" (water-level) has no point "no_such_point"`);
  });

  it('a per-device override of a rule its device\'s kind does not have is refused', async () => {
    const set = defaultRuleSet(profiles);
    // A manhole cover's rule; XZ-WL-001 is a water-level gauge.
    const other = set.kinds['manhole-cover'].find((r) => r.kind === 'threshold')!.id;
    set.devices = { [WL.id]: [{ id: other, disabled: true }] };
    await expect(buildCloud({ db, district, profiles, rules: set, escalation: false, emergency: false }))
      .rejects.toMatchObject({ code: 'CS_CLOUD_RULES_INVALID', message: expect.stringContaining(`devices.${WL.id}[0].id: device "${WL.id}" is a water-level, which has no rule "${other}"`) });
  });

  it('a cloud given a rule set naming a point its profile lacks refuses to start, naming the key', async () => {
    const set = defaultRuleSet(profiles);
    set.kinds['water-level'] = [{ kind: 'threshold', id: 'x', point: 'levl_m', op: '>', value: 1, hazard: 'waterlogging', severity: 'major', class: 'urgent' }];
    await expect(buildCloud({ db, district, profiles, rules: set, escalation: false, emergency: false }))
      .rejects.toMatchObject({ code: 'CS_CLOUD_RULES_INVALID', message: expect.stringContaining('kinds.water-level[0].point: profile "water-level" has no point "levl_m"') });
  });
});
