import exifr from 'exifr';

/**
 * What a photo's EXIF says about when and where it was taken: DateTimeOriginal with
 * OffsetTimeOriginal (a camera without an offset is read in the city's zone, Asia/Shanghai, UTC+8
 * all year), and the GPS position. A photo without EXIF, or with EXIF exifr cannot read, says nothing.
 */

/** Asia/Shanghai has kept UTC+8 without daylight saving since 1991. */
export const CITY_OFFSET = '+08:00';

export interface PhotoExif {
  takenAt: number | null;
  lat: number | null;
  lon: number | null;
}

const EXIF_TIME = /^(\d{4}):(\d{2}):(\d{2})[ T](\d{2}):(\d{2}):(\d{2})/;
const OFFSET = /^[+-]\d{2}:\d{2}$/;

/** `YYYY:MM:DD HH:MM:SS` at an offset (`+08:00`) to an instant; undefined when it is not one. */
export function exifInstant(text: unknown, offset: unknown): number | null {
  if (typeof text !== 'string') return null;
  const m = EXIF_TIME.exec(text.trim());
  if (!m) return null;
  const off = typeof offset === 'string' && OFFSET.test(offset.trim()) ? offset.trim() : CITY_OFFSET;
  const t = Date.parse(`${m[1]}-${m[2]}-${m[3]}T${m[4]}:${m[5]}:${m[6]}${off}`);
  return Number.isFinite(t) ? t : null;
}

export async function readExif(bytes: Buffer): Promise<PhotoExif> {
  const out: PhotoExif = { takenAt: null, lat: null, lon: null };
  try {
    // Raw values: exifr would otherwise read the time in the process's own zone.
    const tags = (await exifr.parse(bytes, { pick: ['DateTimeOriginal', 'OffsetTimeOriginal'], reviveValues: false })) as Record<string, unknown> | undefined;
    out.takenAt = exifInstant(tags?.DateTimeOriginal, tags?.OffsetTimeOriginal);
  } catch { /* no readable EXIF: nothing known */ }
  try {
    const gps = (await exifr.gps(bytes)) as { latitude?: number; longitude?: number } | undefined;
    if (gps && Number.isFinite(gps.latitude) && Number.isFinite(gps.longitude) && Math.abs(gps.latitude!) <= 90 && Math.abs(gps.longitude!) <= 180) {
      out.lat = gps.latitude!;
      out.lon = gps.longitude!;
    }
  } catch { /* no GPS */ }
  return out;
}

/** Great-circle distance in metres (haversine, mean Earth radius). */
export function distanceM(lat1: number, lon1: number, lat2: number, lon2: number): number {
  const R = 6_371_008.8;
  const rad = (d: number) => (d * Math.PI) / 180;
  const a = Math.sin(rad(lat2 - lat1) / 2) ** 2 + Math.cos(rad(lat1)) * Math.cos(rad(lat2)) * Math.sin(rad(lon2 - lon1) / 2) ** 2;
  return 2 * R * Math.asin(Math.min(1, Math.sqrt(a)));
}
