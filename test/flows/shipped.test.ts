import { readdirSync, readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';

/**
 * The shipped flows (flows/flows/*.json) import as they are into `citysteward flows`: one tab each, only
 * Node-RED's core nodes and the CitySteward package's, function nodes that load no module (that Node-RED
 * runs with functionExternalModules off), and each one documented in flows/README.md.
 */

const dir = new URL('../../flows/flows/', import.meta.url);
const files = readdirSync(dir).filter((f) => f.endsWith('.json'));
const readme = readFileSync(new URL('../../flows/README.md', import.meta.url), 'utf8');
const pkg = JSON.parse(readFileSync(new URL('../../flows/node-red-contrib-citysteward/package.json', import.meta.url), 'utf8')) as { 'node-red': { nodes: Record<string, string> } };
const CORE = ['tab', 'inject', 'debug', 'catch', 'function', 'switch', 'change', 'template', 'json', 'http in', 'http response', 'http request', 'file in', 'mqtt in', 'mqtt-broker', 'comment'];
const known = new Set([...CORE, ...Object.keys(pkg['node-red'].nodes)]);

describe('the shipped flows', () => {
  it('are there: the CAP poller, the notifications and the hotline bridge', () => {
    expect(files.sort()).toEqual(['cap-warning-poller.json', 'hotline-bridge.json', 'notifications.json']);
  });

  it.each(files)('%s is one tab of known nodes, wired to nodes of its own, documented', (file) => {
    const nodes = JSON.parse(readFileSync(new URL(file, dir), 'utf8')) as { id: string; type: string; z?: string; wires?: string[][]; libs?: unknown[] }[];
    const tabs = nodes.filter((n) => n.type === 'tab');
    expect(tabs).toHaveLength(1);
    const ids = new Set(nodes.map((n) => n.id));
    expect(ids.size).toBe(nodes.length);
    for (const n of nodes) {
      expect(known.has(n.type), `${n.id}: ${n.type}`).toBe(true);
      if (n.type !== 'tab') expect([tabs[0].id, undefined], n.id).toContain(n.z);
      for (const target of (n.wires ?? []).flat()) expect(ids.has(target), `${n.id} → ${target}`).toBe(true);
      expect(n.libs ?? [], `${n.id} loads modules`).toEqual([]);
    }
    expect(readme).toMatch(new RegExp(`## .*\\(\`${file.replace('.', '\\.')}\`\\)`));
  });
});
