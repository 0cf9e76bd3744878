/**
 * Builds an EXIF APP1 segment (TIFF little-endian: IFD0 -> Exif IFD with DateTimeOriginal and
 * OffsetTimeOriginal, GPS IFD with latitude and longitude) and puts it after a JPEG's SOI marker,
 * so photo tests need no camera fixture: the JPEG stays valid (APP1 is an ordinary segment).
 */
export interface ExifFields {
  /** `YYYY:MM:DD HH:MM:SS` as a camera writes it. */
  dateTimeOriginal?: string;
  /** e.g. `+08:00`. */
  offsetTimeOriginal?: string;
  lat?: number;
  lon?: number;
}

type Entry = { tag: number; type: number; count: number; data: Buffer };
const ASCII = 2, LONG = 4, RATIONAL = 5;

const ascii = (tag: number, s: string): Entry => ({ tag, type: ASCII, count: s.length + 1, data: Buffer.from(`${s}\u0000`, 'latin1') });
function dms(tag: number, deg: number): Entry {
  const a = Math.abs(deg);
  const d = Math.floor(a), m = Math.floor((a - d) * 60), s = Math.round(((a - d) * 60 - m) * 60 * 10000);
  const b = Buffer.alloc(24);
  [[d, 1], [m, 1], [s, 10000]].forEach(([n, q], i) => { b.writeUInt32LE(n, i * 8); b.writeUInt32LE(q, i * 8 + 4); });
  return { tag, type: RATIONAL, count: 3, data: b };
}

/** One IFD at `offset` (from the TIFF header); returns its bytes, values past 4 bytes after the entries. */
function ifd(entries: Entry[], offset: number): Buffer {
  entries.sort((x, y) => x.tag - y.tag);
  const head = 2 + entries.length * 12 + 4;
  const parts: Buffer[] = [];
  const table = Buffer.alloc(head);
  table.writeUInt16LE(entries.length, 0);
  let extra = offset + head;
  entries.forEach((e, i) => {
    const at = 2 + i * 12;
    table.writeUInt16LE(e.tag, at);
    table.writeUInt16LE(e.type, at + 2);
    table.writeUInt32LE(e.count, at + 4);
    if (e.data.length <= 4) e.data.copy(table, at + 8);
    else {
      table.writeUInt32LE(extra, at + 8);
      const padded = e.data.length % 2 ? Buffer.concat([e.data, Buffer.alloc(1)]) : e.data;
      parts.push(padded);
      extra += padded.length;
    }
  });
  return Buffer.concat([table, ...parts]);
}

const long = (tag: number, v: number): Entry => { const b = Buffer.alloc(4); b.writeUInt32LE(v); return { tag, type: LONG, count: 1, data: b }; };
const size = (entries: Entry[]) => 2 + entries.length * 12 + 4 + entries.reduce((n, e) => n + (e.data.length > 4 ? e.data.length + (e.data.length % 2) : 0), 0);

export function exifSegment(f: ExifFields): Buffer {
  const exif: Entry[] = [];
  if (f.dateTimeOriginal) exif.push(ascii(0x9003, f.dateTimeOriginal));
  if (f.offsetTimeOriginal) exif.push(ascii(0x9011, f.offsetTimeOriginal));
  const gps: Entry[] = [];
  if (f.lat !== undefined && f.lon !== undefined) {
    gps.push(ascii(0x0001, f.lat >= 0 ? 'N' : 'S'), dms(0x0002, f.lat), ascii(0x0003, f.lon >= 0 ? 'E' : 'W'), dms(0x0004, f.lon));
  }
  // IFD0 holds the pointers; its size does not depend on their values.
  const ifd0: Entry[] = [long(0x8769, 0), ...(gps.length ? [long(0x8825, 0)] : [])];
  const o0 = 8;
  const oExif = o0 + size(ifd0);
  const oGps = oExif + size(exif);
  ifd0[0] = long(0x8769, oExif);
  if (gps.length) ifd0[1] = long(0x8825, oGps);
  const header = Buffer.from([0x49, 0x49, 0x2a, 0x00, 0x08, 0x00, 0x00, 0x00]);
  const tiff = Buffer.concat([header, ifd(ifd0, o0), ifd(exif, oExif), ...(gps.length ? [ifd(gps, oGps)] : [])]);
  const body = Buffer.concat([Buffer.from('Exif\u0000\u0000', 'latin1'), tiff]);
  const seg = Buffer.alloc(4);
  seg.writeUInt16BE(0xffe1, 0);
  seg.writeUInt16BE(body.length + 2, 2);
  return Buffer.concat([seg, body]);
}

/** The JPEG with the EXIF segment right after its SOI marker. */
export function withExif(jpeg: Buffer, f: ExifFields): Buffer {
  if (jpeg[0] !== 0xff || jpeg[1] !== 0xd8) throw new Error('not a JPEG');
  return Buffer.concat([jpeg.subarray(0, 2), exifSegment(f), jpeg.subarray(2)]);
}
