import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { categoriesOf, checkCatalogue, DEMO_CATALOGUE, demoCatalogueFor, loadCatalogue } from '../../cloud/catalogue/index.ts';
import { DEFAULT_CATEGORIES } from '../../cloud/categories.ts';
import { district } from './fixtures.ts';

/** The category catalogue (docs/catalogue.md): one source for people's categories and the sensor hazards'; a bad file names its key. */

const dir = mkdtempSync(join(tmpdir(), 'cs-catalogue-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function load(doc: unknown): () => unknown {
  const file = join(dir, `c-${Math.random().toString(36).slice(2)}.json`);
  writeFileSync(file, JSON.stringify(doc));
  return () => loadCatalogue(file, district);
}

const withCategory = (i: number, patch: Record<string, unknown>) =>
  ({ ...DEMO_CATALOGUE, categories: DEMO_CATALOGUE.categories.map((c, j) => (j === i ? { ...c, ...patch } : c)) });

describe('category catalogue', () => {
  it('fits the demo catalogue to a district without the demo\'s units (regression: citysteward cloud refused the bench district at start)', () => {
    // A district of one unit of its own (the bench's), none of the demo's.
    const other = { ...district, units: [{ id: 'u-ops', name: 'Operations' }], devices: [] };
    expect(checkCatalogue(DEMO_CATALOGUE, other).length).toBeGreaterThan(0);
    const { catalogue, unrouted } = demoCatalogueFor(other);
    expect(checkCatalogue(catalogue, other)).toEqual([]);
    expect(unrouted).toContain('E0102');
    expect(catalogue.categories.find((c) => c.code === 'E0102')!.routing.unit).toBeUndefined();
    // The demo district keeps every route.
    expect(demoCatalogueFor(district).unrouted).toEqual([]);
  });

  it('derives the sensor hazards\' categories from the demo catalogue (no second table)', () => {
    expect(DEFAULT_CATEGORIES).toEqual(categoriesOf(DEMO_CATALOGUE));
    expect(DEFAULT_CATEGORIES['cover-open']).toMatchObject({
      code: 'E9001', class: 'urgent', limit: { amount: 6, unit: 'hours' }, group: 'manhole', unit: 'owner',
      milestones: [{ name: 'on-site', limit: { amount: 30, unit: 'minutes' } }, { name: 'made-safe', limit: { amount: 2, unit: 'hours' } }],
    });
    expect(DEFAULT_CATEGORIES['low-battery']).toMatchObject({ class: 'device-health', unit: 'maintainer', limit: { amount: 2, unit: 'workDays' } });
    expect(DEMO_CATALOGUE.categories.length).toBeGreaterThanOrEqual(15);
  });

  it('loads a city\'s own file, and a bad one fails naming the key and the problem', () => {
    expect(load(DEMO_CATALOGUE)()).toEqual(DEMO_CATALOGUE);
    expect(load(withCategory(0, { limit: { amount: 2, unit: 'fortnights' } }))).toThrow(/categories\[0\]\.limit\.unit/);
    expect(load(withCategory(0, { code: 'C0199' }))).toThrow(/categories\[0\]\.code: must be C0101/);
    expect(load(withCategory(0, { routing: { unit: 'no-such-unit' } }))).toThrow(/categories\[0\]\.routing\.unit: unknown unit "no-such-unit"/);
    expect(load(withCategory(0, { hazards: ['cover-open'] }))).toThrow(/hazard "cover-open" is already covered by C0101|categories\[\d+\]\.hazards: hazard "cover-open" is already covered/);
    expect(load(withCategory(0, { major: '77', code: 'C7701' }))).toThrow(/categories\[0\]\.major: no component major class 77/);
    expect(load({ name: 'x' })).toThrow(/CS_CLOUD_CATALOGUE_INVALID|majors/);
    writeFileSync(join(dir, 'broken.json'), '{ not json');
    expect(() => loadCatalogue(join(dir, 'broken.json'))).toThrow(/cannot read category catalogue/);
  });
});
