/**
 * Heap snapshot diff by constructor: `node --import tsx bench/heap-diff.ts BEFORE.heapsnapshot AFTER.heapsnapshot [N]`
 * prints, per constructor (node type + name), the growth in count and self size, divided by N
 * (connections) when given. The summary view of DevTools, without retained sizes (docs/architecture.md#broker-memory).
 */
import { readFileSync } from 'node:fs';

interface Snapshot {
  snapshot: { meta: { node_fields: string[]; node_types: [string[], ...unknown[]] } };
  nodes: number[];
  strings: string[];
}

/** Count and self size per `type:name` (closures by function name, strings and arrays together). */
export function summarize(file: string): Map<string, { count: number; size: number }> {
  const snap = JSON.parse(readFileSync(file, 'utf8')) as Snapshot;
  const fields = snap.snapshot.meta.node_fields;
  const types = snap.snapshot.meta.node_types[0];
  const [T, N, S] = ['type', 'name', 'self_size'].map((f) => fields.indexOf(f));
  const out = new Map<string, { count: number; size: number }>();
  for (let i = 0; i < snap.nodes.length; i += fields.length) {
    const type = types[snap.nodes[i + T]];
    const raw = type === 'string' || type === 'concatenated string' || type === 'sliced string' || type === 'number' ? '' : snap.strings[snap.nodes[i + N]];
    const name = raw.length > 60 ? `${raw.slice(0, 60)}…` : raw;
    const key = `${type}:${name}`;
    const e = out.get(key) ?? { count: 0, size: 0 };
    e.count++;
    e.size += snap.nodes[i + S];
    out.set(key, e);
  }
  return out;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const [before, after, n = '1'] = process.argv.slice(2);
  const per = Number(n);
  const a = summarize(before!);
  const b = summarize(after!);
  const rows = [...b].map(([k, v]) => ({ k, count: (v.count - (a.get(k)?.count ?? 0)) / per, size: (v.size - (a.get(k)?.size ?? 0)) / per }));
  rows.sort((x, y) => y.size - x.size);
  const total = rows.reduce((s, r) => s + r.size, 0);
  console.log(`total self size growth per unit: ${total.toFixed(0)} B`);
  for (const r of rows.slice(0, 60)) console.log(`${r.size.toFixed(1).padStart(9)} B ${r.count.toFixed(2).padStart(7)}  ${r.k}`);
}
