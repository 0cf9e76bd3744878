import { severityRank, type DeviceStatus, type Severity } from '../../../../../lib/vocabulary.ts';

/**
 * The map's marker scale (docs/map-data.md), defined once: what a device looks like by its tier
 * (the highest severity breached) or, without one, its status. Colour is never the only cue: each
 * look has its own shape and glyph, and the legend and the marker's name say it in words.
 * The fills are CSS (CityMap.vue, class `cs-look-<kind>-<key>`, from the shared palette in
 * styles.css), as the page's CSP refuses inline style attributes.
 */

export interface MapDevice {
  id: string;
  lat: number;
  lon: number;
  /** GET /api/devices `status`. */
  status: DeviceStatus;
  tier: Severity | null;
  label: string;
}

export type Shape = 'circle' | 'square' | 'diamond' | 'triangle';
export interface Look {
  /** Legend and message key: `common.severity.<key>` for tiers, `map.status.<key>` for statuses. */
  key: string;
  kind: 'tier' | 'status';
  shape: Shape;
  glyph: string;
  /** Higher is worse; a cluster takes the look of its worst member. */
  rank: number;
}

const TIER_LOOKS: Record<Severity, Omit<Look, 'key' | 'kind' | 'rank'>> = {
  critical: { shape: 'triangle', glyph: '!!' },
  major: { shape: 'diamond', glyph: '!' },
  minor: { shape: 'diamond', glyph: '·' },
  info: { shape: 'circle', glyph: 'i' },
};

/** Statuses without a tier; an unknown status looks like `offline` (it is shown, never hidden). */
const STATUS_LOOKS: Record<DeviceStatus, Omit<Look, 'key' | 'kind' | 'rank'> & { rank: number }> = {
  alarm: { shape: 'diamond', glyph: '!', rank: 0.5 },
  offline: { shape: 'square', glyph: '×', rank: -1 },
  silent: { shape: 'square', glyph: '?', rank: -2 },
  normal: { shape: 'circle', glyph: '', rank: -3 },
};

/** Every look, worst first: the legend. */
export const LOOKS: Look[] = [
  ...(Object.keys(TIER_LOOKS) as Severity[]).map((k) => ({ key: k, kind: 'tier' as const, rank: severityRank(k) + 1, ...TIER_LOOKS[k] })),
  ...Object.entries(STATUS_LOOKS).map(([k, v]) => ({ key: k, kind: 'status' as const, ...v })),
].sort((a, b) => b.rank - a.rank);

export function lookOf(d: Pick<MapDevice, 'status' | 'tier'>): Look {
  if (d.tier && TIER_LOOKS[d.tier]) return LOOKS.find((l) => l.kind === 'tier' && l.key === d.tier)!;
  return LOOKS.find((l) => l.kind === 'status' && l.key === d.status) ?? LOOKS.find((l) => l.key === 'offline')!;
}

const escapeMap: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };
/** Text for Leaflet's HTML options (icons, attribution): never markup from data or config. */
export const escapeHtml = (s: string): string => s.replace(/[&<>"']/g, (c) => escapeMap[c]);

/** The icon's markup: a shape with its glyph (hidden from screen readers: the marker's title names it). */
export function pinHtml(look: Look, selected: boolean, text = look.glyph): string {
  return `<span class="cs-pin cs-pin--${look.shape} cs-look-${look.kind}-${look.key}${selected ? ' cs-pin--selected' : ''}" aria-hidden="true"><b>${escapeHtml(text)}</b></span>`;
}

export interface TileSource {
  kind: 'xyz' | 'wmts';
  url: string;
  attribution?: string;
  subdomains?: string[] | string;
  layer?: string;
  tileMatrixSet?: string;
  style?: string;
  format?: string;
  maxZoom?: number;
}

/**
 * The Leaflet URL template of a tile source. WMTS is asked for as KVP GetTile, as Tianditu serves
 * it (OGC 07-057r7 §8.2.1): TILEMATRIX is the zoom, TILEROW y, TILECOL x in a Web Mercator set.
 */
export function tileTemplate(t: TileSource): string {
  if (t.kind === 'xyz') return t.url;
  const q = (v: string) => encodeURIComponent(v);
  const params = [
    'SERVICE=WMTS', 'REQUEST=GetTile', 'VERSION=1.0.0', `LAYER=${q(t.layer ?? '')}`, `STYLE=${q(t.style ?? 'default')}`,
    `TILEMATRIXSET=${q(t.tileMatrixSet ?? 'w')}`, `FORMAT=${q(t.format ?? 'tiles')}`, 'TILEMATRIX={z}', 'TILEROW={y}', 'TILECOL={x}',
  ];
  return `${t.url}${t.url.includes('?') ? '&' : '?'}${params.join('&')}`;
}
