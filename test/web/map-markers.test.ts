import { describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { DEVICE_STATUSES, SEVERITIES } from '../../lib/vocabulary.ts';
import { LOOKS, escapeHtml, lookOf, pinHtml, tileTemplate } from '../../cloud/web/app/src/components/map-markers.ts';

/** The map's marker scale and tile templates (cloud/web/app/src/components/map-markers.ts; docs/map-data.md). */

describe('the marker scale', () => {
  it('has a look for every tier and status, each with its own shape and glyph pair (colour is not the only cue)', () => {
    expect(LOOKS.filter((l) => l.kind === 'tier').map((l) => l.key).sort()).toEqual([...SEVERITIES].sort());
    expect(LOOKS.filter((l) => l.kind === 'status').map((l) => l.key).sort()).toEqual([...DEVICE_STATUSES].sort());
    // alarm without a tier shares major's look on purpose: an alarm is at least that serious
    const cues = LOOKS.filter((l) => l.key !== 'alarm').map((l) => `${l.shape}/${l.glyph}`);
    expect(new Set(cues).size).toBe(cues.length);
  });

  it('shows the tier over the status, worst first, and an unknown status as offline', () => {
    expect(lookOf({ status: 'normal', tier: 'critical' }).key).toBe('critical');
    expect(lookOf({ status: 'alarm', tier: null }).key).toBe('alarm');
    expect(lookOf({ status: 'weird' as 'normal', tier: null }).key).toBe('offline');
    expect(LOOKS[0].key).toBe('critical');
    expect(LOOKS.at(-1)!.key).toBe('normal');
  });

  it('has a CSS fill for every look, and markup with no inline style (the CSP refuses it)', () => {
    const css = readFileSync(new URL('../../cloud/web/app/src/components/CityMap.vue', import.meta.url), 'utf8');
    for (const l of LOOKS) {
      expect(css, l.key).toContain(`.cs-look-${l.kind}-${l.key}`);
      expect(pinHtml(l, true)).not.toMatch(/style=/);
    }
    expect(pinHtml(LOOKS[0], false, '<img src=x onerror=alert(1)>')).not.toContain('<img');
    expect(escapeHtml(`a<b>"c"&'d'`)).toBe('a&lt;b&gt;&quot;c&quot;&amp;&#39;d&#39;');
  });
});

describe('tile templates', () => {
  it('keeps an XYZ template as configured', () => {
    const url = 'https://t{s}.tianditu.gov.cn/DataServer?T=vec_w&x={x}&y={y}&l={z}&tk=K';
    expect(tileTemplate({ kind: 'xyz', url })).toBe(url);
  });

  it("asks a WMTS service for KVP GetTile as Tianditu serves it, keeping the endpoint's own query", () => {
    expect(tileTemplate({ kind: 'wmts', url: 'https://t{s}.tianditu.gov.cn/vec_w/wmts?tk=K', layer: 'vec', tileMatrixSet: 'w' })).toBe(
      'https://t{s}.tianditu.gov.cn/vec_w/wmts?tk=K&SERVICE=WMTS&REQUEST=GetTile&VERSION=1.0.0&LAYER=vec&STYLE=default&TILEMATRIXSET=w&FORMAT=tiles&TILEMATRIX={z}&TILEROW={y}&TILECOL={x}',
    );
    expect(tileTemplate({ kind: 'wmts', url: 'http://10.0.0.5/wmts', layer: 'img', format: 'image/png' })).toContain('?SERVICE=WMTS&');
    expect(tileTemplate({ kind: 'wmts', url: 'http://10.0.0.5/wmts', layer: 'img', format: 'image/png' })).toContain('FORMAT=image%2Fpng');
  });
});

describe('the bundled outline', () => {
  it('holds the three districts of Zhuhai, with the demo devices (WGS-84) inside Xiangzhou', async () => {
    const g = JSON.parse(readFileSync(new URL('../../cloud/web/app/src/assets/zhuhai-districts.geojson', import.meta.url), 'utf8'));
    expect(g.features.map((f: { id: string; properties: { name: string; nameEn: string } }) => [f.id, f.properties.name, f.properties.nameEn]))
      .toEqual([['440402', '香洲区', 'Xiangzhou'], ['440403', '斗门区', 'Doumen'], ['440404', '金湾区', 'Jinwan']]);
    const { district } = await import('../cloud/fixtures.ts');
    const inside = (x: number, y: number, ring: [number, number][]) => {
      let c = false;
      for (let i = 0, j = ring.length - 1; i < ring.length; j = i++) {
        const [xi, yi] = ring[i];
        const [xj, yj] = ring[j];
        if ((yi > y) !== (yj > y) && x < ((xj - xi) * (y - yi)) / (yj - yi) + xi) c = !c;
      }
      return c;
    };
    const xiangzhou = g.features[0].geometry.coordinates as [number, number][][][];
    for (const d of district.devices) expect(xiangzhou.some((p) => inside(d.lon, d.lat, p[0])), d.id).toBe(true);
  });
});
