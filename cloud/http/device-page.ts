import { CsError } from '../../lib/errors.ts';
import { CloudErrors } from '../errors.ts';

/** Cursors of id-ordered lists: the last id of the page, base64url (opaque to clients). */
export const encodeCursor = (id: string): string => Buffer.from(id, 'utf8').toString('base64url');

export function decodeCursor(cursor: string): string {
  const id = Buffer.from(cursor, 'base64url').toString('utf8');
  if (!id || encodeCursor(id) !== cursor) throw new CsError(CloudErrors.BAD_CURSOR, `cursor "${cursor.slice(0, 40)}" is not one this list gave`);
  return id;
}

/**
 * A page of an id-sorted array: the first `limit` items after the cursor's id that pass `keep`
 * (binary search to the cursor, then a scan that stops at the page's end).
 */
export function devicePage<T extends { id: string }>(sorted: T[], cursor: string | undefined, limit: number, keep: (t: T) => boolean): { items: T[]; nextCursor: string | null } {
  let i = 0;
  if (cursor !== undefined) {
    const after = decodeCursor(cursor);
    let lo = 0;
    let hi = sorted.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (sorted[mid].id <= after) lo = mid + 1;
      else hi = mid;
    }
    i = lo;
  }
  const items: T[] = [];
  for (; i < sorted.length && items.length < limit; i++) if (keep(sorted[i])) items.push(sorted[i]);
  let more = false;
  for (; i < sorted.length; i++) if (keep(sorted[i])) { more = true; break; }
  return { items, nextCursor: more ? encodeCursor(items[items.length - 1].id) : null };
}
