import { createHash } from 'node:crypto';

/** Comparing and describing configuration documents (cloud/config/): canonical JSON, its hash, the keys changed. */

/** JSON with object keys sorted: one document, one text, whatever order its keys came in. */
export function canonicalJson(v: unknown): string {
  return JSON.stringify(v, (_k, x: unknown) => (x && typeof x === 'object' && !Array.isArray(x)
    ? Object.fromEntries(Object.entries(x as Record<string, unknown>).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)))
    : x));
}

export function documentHash(v: unknown): string {
  return createHash('sha256').update(canonicalJson(v)).digest('hex');
}

/**
 * The keys whose values differ, as dotted paths (`kinds.water-level[2].value 0.85 → 0.5`, values shown for scalars);
 * an array that changed length is named as a whole. At most `max`, then "and N more".
 */
export function changedKeys(before: unknown, after: unknown, max = 12): string[] {
  const out: string[] = [];
  const walk = (a: unknown, b: unknown, key: string): void => {
    if (canonicalJson(a) === canonicalJson(b)) return;
    const objects = a && b && typeof a === 'object' && typeof b === 'object';
    if (objects && Array.isArray(a) && Array.isArray(b) && a.length === b.length) {
      a.forEach((x, i) => walk(x, b[i], `${key}[${i}]`));
      return;
    }
    if (objects && !Array.isArray(a) && !Array.isArray(b)) {
      const keys = [...new Set([...Object.keys(a as object), ...Object.keys(b as object)])].sort();
      for (const k of keys) walk((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k], key ? `${key}.${k}` : k);
      return;
    }
    const scalar = (x: unknown) => x === undefined || x === null || typeof x !== 'object';
    const show = (x: unknown) => (x === undefined ? '(none)' : JSON.stringify(x));
    out.push(scalar(a) && scalar(b) ? `${key || '(root)'} ${show(a)} → ${show(b)}` : (key || '(root)'));
  };
  walk(before, after, '');
  return out.length > max ? [...out.slice(0, max), `and ${out.length - max} more`] : out;
}

/** One line: `kinds.water-level[2].value, holidays` or `no change`. */
export function summarise(before: unknown, after: unknown): string {
  if (before === undefined || before === null) return 'first version';
  const keys = changedKeys(before, after);
  return keys.length ? `changed ${keys.join(', ')}` : 'no change';
}
