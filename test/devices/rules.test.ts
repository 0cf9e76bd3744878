import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadProfiles } from '../../devices/profile.ts';
import { checkRuleSet, defaultRuleSet, loadRuleSet, rulesFor, type RuleOverride } from '../../devices/rules.ts';

/** Per-device overrides are checked merged with the rule they change (devices/rules.ts, checkRuleSet). */

const profiles = loadProfiles();
const kinds = new Map([['WL-1', 'water-level'], ['MH-1', 'manhole-cover']]);
const withOverrides = (devices: Record<string, unknown[]>) => ({ ...defaultRuleSet(profiles), devices: devices as Record<string, RuleOverride[]> });

describe('rule overrides', () => {
  it('the README example (a lower limit, a disabled rule) passes and applies', () => {
    const set = withOverrides({ 'WL-1': [{ id: 'level-tier1', value: 0.6 }, { id: 'battery-low', disabled: true }] });
    expect(checkRuleSet(set, profiles, '', kinds)).toEqual([]);
    const rules = rulesFor(set, 'water-level', 'WL-1');
    expect(rules.find((r) => r.id === 'level-tier1')).toMatchObject({ kind: 'threshold', value: 0.6 });
    expect(rules.some((r) => r.id === 'battery-low')).toBe(false);
  });

  it('an override with a string limit, a misspelt key and a foreign point is refused, each named by its key', () => {
    const set = withOverrides({ 'WL-1': [{ id: 'level-tier1', value: '0.5', point: 'no_such_point', valeu: 0.5 }] });
    expect(checkRuleSet(set, profiles, '', kinds)).toEqual(expect.arrayContaining([
      expect.objectContaining({ key: 'devices.WL-1[0].valeu', message: expect.stringMatching(/^unknown key/) }),
      { key: 'devices.WL-1[0].value', message: 'expected number or boolean, got "0.5"' },
      { key: 'devices.WL-1[0].point', message: 'device "WL-1" (water-level) has no point "no_such_point"' },
    ]));
  });

  it('an override with a key of another rule kind (risePerHour on a threshold) is refused', () => {
    const set = withOverrides({ 'WL-1': [{ id: 'level-tier2', risePerHour: 0.2 }] });
    expect(checkRuleSet(set, profiles, '', kinds)).toEqual([expect.objectContaining({ key: 'devices.WL-1[0].risePerHour', message: expect.stringMatching(/^unknown key \(a threshold rule has/) })]);
  });

  it('two overrides of one rule for one device are refused (the second would silently win)', () => {
    const set = withOverrides({ 'WL-1': [{ id: 'level-tier1', value: 0.6 }, { id: 'level-tier1', value: 0.5 }] });
    expect(checkRuleSet(set, profiles, '', kinds)).toEqual([{ key: 'devices.WL-1[1].id', message: 'a second override of rule "level-tier1" for this device (one per rule)' }]);
  });

  it('an override of a device the config does not know passes when it fits some kind with the rule, and is refused when it fits none', () => {
    expect(checkRuleSet(withOverrides({ 'XZ-OTHER': [{ id: 'battery-low', value: 15 }] }), profiles, '', kinds)).toEqual([]);
    expect(checkRuleSet(withOverrides({ 'XZ-OTHER': [{ id: 'battery-low', point: 'nowhere' }] }), profiles, '', kinds))
      .toEqual([{ key: 'devices.XZ-OTHER[0].point', message: expect.stringMatching(/^profile "[a-z-]+" has no point "nowhere"$/) }]);
  });

  it('a rule-set file whose override is malformed is refused with CS_DEV_RULES_INVALID, naming the file', () => {
    const dir = mkdtempSync(join(tmpdir(), 'cs-rules-'));
    try {
      const file = join(dir, 'rules.yaml');
      writeFileSync(file, 'kinds: {}\ndevices:\n  WL-1: [ { id: 5 } ]\n');
      expect(() => loadRuleSet(file, profiles, kinds)).toThrow(expect.objectContaining({ code: 'CS_DEV_RULES_INVALID', file }));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
