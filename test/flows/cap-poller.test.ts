import { readFileSync } from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import { eventually } from '../helpers/process.ts';
import { receiver, shippedFlow, startStack, withEnv, type Stack } from './flow-stack.ts';

/**
 * The CAP warning feed poller (flows/flows/cap-warning-poller.json) end to end: an Atom index of CAP
 * alerts served by the test, polled twice by the flow, the warning posted once to the cloud, which
 * switches to emergency mode once.
 */

const orange = readFileSync(new URL('../fixtures/cap/orange-typhoon.xml', import.meta.url), 'utf8');
const atom = (entries: { id: string; href: string }[]) => `<?xml version="1.0" encoding="utf-8"?>
<feed xmlns="http://www.w3.org/2005/Atom">
  <id>urn:test:zhuhai-warnings</id><title>珠海市气象预警</title><updated>2026-09-14T06:00:00+08:00</updated>
  ${entries.map((e) => `<entry><id>${e.id}</id><title>台风橙色预警信号</title><updated>2026-09-14T06:00:00+08:00</updated>
    <link rel="alternate" type="application/cap+xml" href="${e.href}"/></entry>`).join('\n  ')}
</feed>`;

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

describe('the CAP warning feed poller flow', () => {
  it('posts a warning of an Atom feed once over two polls, and the cloud switches to emergency mode once', async () => {
    const stack: Stack = await startStack();
    cleanups.push(() => stack.close());
    let entries = [{ id: 'urn:test:1', href: '/cap/orange.xml' }];
    const feed = await receiver((r) => (r.url === '/feed.atom'
      ? { type: 'application/atom+xml', body: atom(entries) }
      : r.url === '/cap/orange.xml' ? { type: 'application/cap+xml', body: orange } : { status: 404, body: 'no' }));
    cleanups.push(() => feed.close());

    // The shipped flow polls on a timer; the test fires the poll itself.
    const flow = withEnv(shippedFlow('cap-warning-poller'), {
      CAP_FEED_URL: `${feed.url}/feed.atom`, CITYSTEWARD_URL: stack.base, CITYSTEWARD_TOKEN: await stack.token('commander'),
    }).map((n) => (n.type === 'inject' ? { ...n, repeat: '', once: false } : n));
    await stack.load(flow);
    const posted: Record<string, unknown>[] = [];
    stack.getNode('cs-cap-debug').on('input', (msg) => posted.push(msg.payload as Record<string, unknown>));

    const poll = async (n: number) => {
      stack.getNode('cs-cap-poll').receive({});
      await eventually(() => feed.requests.filter((r) => r.url === '/feed.atom').length >= n);
    };
    await poll(1);
    await eventually(() => posted.length === 1);
    expect(posted[0]).toMatchObject({ status: 202, result: { duplicate: false, mode: { mode: 'emergency', level: 'II' } } });

    // The second poll lists the same warning again, and once more under another entry.
    entries = [...entries, { id: 'urn:test:1-mirror', href: `${feed.url}/cap/orange.xml` }];
    await poll(2);
    await eventually(() => feed.requests.filter((r) => r.url === '/cap/orange.xml').length === 2);
    await new Promise((r) => setTimeout(r, 300));
    expect(posted).toHaveLength(1);

    const status = (await (await fetch(`${stack.base}/api/emergency`, { headers: { authorization: `Bearer ${await stack.token('operator')}` } })).json()) as {
      mode: string; level: string; warnings: unknown[]; log: Record<string, unknown>[];
    };
    expect(status).toMatchObject({ mode: 'emergency', level: 'II' });
    expect(status.warnings).toHaveLength(1);
    // One switch: the audit log holds the one entry into emergency mode, made by the warning.
    expect(status.log).toEqual([expect.objectContaining({ action: 'enter', mode: 'emergency', level: 'II', role: 'warning-feed', alertId: 'GD-ZH-2026-TY-0917-001' })]);
  });
});
