import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { topics } from '../../lib/topics.ts';
import { buildCloud, type Cloud } from '../../cloud/app.ts';
import type { CsEvent } from '../../cloud/events.ts';
import { BACKENDS, freshDatabase, profiles, reading, syntheticDistrict, type Backend } from './fixtures.ts';

/**
 * What a crew and a verifier need from the case API (issue 11), on SQLite and PostgreSQL: notes,
 * milestones reached, extension requests approved or refused, the verification check shown before
 * trying, and actions applied exactly once when a crew's offline queue resends them.
 */

const MIN = 60_000;
const HOUR = 60 * MIN;
const T0 = Date.parse('2026-11-25T02:00:00Z');
const district = syntheticDistrict(40, 1);
const GW = 'gw-t-0';

interface Json {
  id: string; state: string; unit: string; deadline: string; extensionCount: number;
  milestones: { name: string; due: string | null; reachedAt: string | null }[];
  extensionRequest: { reason: string; until: string | null; at: string; by: string } | null;
  verification?: { inRange: boolean; backSince: string | null; windowMs: number; ready: boolean };
  handledAt: string | null;
  history: { action: string; actor: string; role: string; fromState: string | null; toState: string | null; note: string | null; reason: string | null; details: Record<string, unknown> | null }[];
  allowedActions: string[];
}

describe.each(BACKENDS)('case work on $backend', ({ backend, skip }: { backend: Backend; skip: boolean }) => {
  describe.skipIf(skip)(backend, () => {
    let cloud: Cloud;
    let drop: () => Promise<void>;
    let clock = T0;
    let seq = 0;
    let next = 0;
    const tok: Record<string, string> = {};
    const events: CsEvent[] = [];

    beforeAll(async () => {
      const fresh = await freshDatabase(backend);
      drop = fresh.drop;
      cloud = await buildCloud({ db: fresh.db, district, profiles, now: () => clock, escalation: false, workflow: { verifyClearMs: 10 * MIN } });
      await cloud.start();
      for (const r of ['operator', 'commander', 'verifier', 'admin'] as const) tok[r] = await cloud.tokens.create(r);
      tok.crew = await cloud.tokens.create('crew', 'xz-drainage');
      tok.otherCrew = await cloud.tokens.create('crew', 'zh-gas');
      cloud.events.subscribe((e) => events.push(e));
    });

    afterAll(async () => {
      await cloud?.stop();
      await drop?.();
    });

    const send = (device: string, values: Record<string, unknown>) => cloud.ingest(GW, topics.up(GW, device), reading(device, ++seq, clock, values));
    const post = (id: string, action: string, token: string, body: Record<string, unknown> = {}) =>
      cloud.app.inject({ method: 'POST', url: `/api/cases/${id}/${action}`, headers: { authorization: `Bearer ${token}` }, payload: body });
    const get = (url: string, token: string) => cloud.app.inject({ url, headers: { authorization: `Bearer ${token}` } });
    const show = async (id: string) => (await get(`/api/cases/${id}`, tok.operator)).json() as Json;

    /** A dispatched water-level case of xz-drainage; its sensor back in range unless `stillHigh`. */
    async function freshCase(stillHigh = false): Promise<string> {
      const device = `WL-T-${String(++next).padStart(4, '0')}`;
      const opened = await send(device, { level_m: 0.9 });
      const id = (opened as { cases: { caseId: string }[] }).cases[0].caseId;
      if (!stillHigh) await send(device, { level_m: 0.1 });
      return id;
    }

    it('a note from any role that sees the case keeps the state, writes history and an event; notes are required', async () => {
      const id = await freshCase();
      for (const role of ['crew', 'operator', 'commander', 'verifier', 'admin']) {
        const r = await post(id, 'note', tok[role], { notes: `seen by ${role}` });
        expect(r.statusCode, r.body).toBe(200);
        expect(r.json().state).toBe('dispatched');
      }
      const c = await show(id);
      const notes = c.history.filter((h) => h.action === 'note');
      expect(notes.map((h) => [h.role, h.note, h.fromState, h.toState])).toEqual(
        ['crew', 'operator', 'commander', 'verifier', 'admin'].map((r) => [r, `seen by ${r}`, 'dispatched', 'dispatched']));
      expect(events.filter((e) => e.caseId === id && e.type === 'case.transition' && (e.data as { action: string }).action === 'note')).toHaveLength(5);
      const empty = await post(id, 'note', tok.crew, { notes: '  ' });
      expect(empty.statusCode).toBe(400);
      expect(empty.json().code).toBe('CS_CLOUD_CASE_BAD_ACTION');
    });

    it('a crew of another unit can neither see nor act on the case (404), and on-site is the crew\'s, not the verifier\'s (403)', async () => {
      const id = await freshCase();
      for (const action of ['note', 'on-site', 'made-safe', 'request-extension', 'accept']) {
        const r = await post(id, action, tok.otherCrew, { notes: 'x', reason: 'x' });
        expect(r.statusCode, action).toBe(404);
        expect(r.json().code).toBe('CS_CLOUD_CASE_NOT_FOUND');
      }
      expect((await get(`/api/cases/${id}`, tok.otherCrew)).statusCode).toBe(404);
      for (const [action, role] of [['on-site', 'verifier'], ['made-safe', 'operator'], ['request-extension', 'commander'], ['refuse-extension', 'crew']]) {
        const r = await post(id, action, tok[role], { reason: 'x' });
        expect(r.statusCode, `${action} as ${role}`).toBe(403);
      }
      expect((await show(id)).history.map((h) => h.action)).toEqual(['register', 'dispatch']);
    });

    it('on-site and made-safe record the milestone reached; the first report counts; a milestone the category lacks is recorded with no due time', async () => {
      const id = await freshCase();
      const before = await show(id);
      clock += 5 * MIN;
      const t1 = new Date(clock).toISOString();
      const a = (await post(id, 'on-site', tok.crew)).json() as Json;
      expect(a.state).toBe('dispatched');
      const onSite = a.milestones.find((m) => m.name === 'on-site')!;
      expect(onSite.reachedAt).toBe(t1);
      expect(onSite.due).toBe(before.milestones.find((m) => m.name === 'on-site')?.due ?? null);
      clock += 5 * MIN;
      const again = (await post(id, 'on-site', tok.crew)).json() as Json;
      expect(again.milestones.find((m) => m.name === 'on-site')!.reachedAt).toBe(t1);
      expect(again.history.at(-1)).toMatchObject({ action: 'on-site', details: { milestone: 'on-site', alreadyReached: true } });
      const safe = (await post(id, 'made-safe', tok.admin)).json() as Json;
      const m = safe.milestones.find((x) => x.name === 'made-safe')!;
      expect(m.reachedAt).toBe(new Date(clock).toISOString());
      if (!before.milestones.some((x) => x.name === 'made-safe')) expect(m.due).toBeNull();
      expect((await post(id, 'accept', tok.crew)).statusCode).toBe(200);
      expect((await post(id, 'made-safe', tok.crew)).statusCode).toBe(200);
      expect((await post(id, 'handle', tok.crew, { notes: 'pumped' })).statusCode).toBe(200);
      const late = await post(id, 'on-site', tok.crew);
      expect(late.statusCode).toBe(409);
      expect(late.json().code).toBe('CS_CLOUD_CASE_ILLEGAL_ACTION');
    });

    it('a crew asks for an extension; one pending at a time; the commander refuses it or approves it with extend, both clearing it with history', async () => {
      const id = await freshCase();
      const c0 = await show(id);
      const until = new Date(Date.parse(c0.deadline) + 2 * HOUR).toISOString();
      expect((await post(id, 'request-extension', tok.crew, {})).statusCode).toBe(400);
      const asked = (await post(id, 'request-extension', tok.crew, { reason: 'pump on order', until })).json() as Json;
      expect(asked.extensionRequest).toMatchObject({ reason: 'pump on order', until, at: new Date(clock).toISOString(), by: expect.any(String) });
      expect(asked.allowedActions).toContain('refuse-extension');
      expect(asked.allowedActions).not.toContain('request-extension');
      const second = await post(id, 'request-extension', tok.crew, { reason: 'again' });
      expect(second.statusCode).toBe(400);
      expect(second.json().message).toContain('already has a pending extension request');
      const listed = (await get('/api/cases?extensionRequested=true', tok.commander)).json().items.map((x: { id: string }) => x.id);
      expect(listed).toContain(id);
      expect((await get('/api/cases?extensionRequested=false', tok.commander)).json().items.map((x: { id: string }) => x.id)).not.toContain(id);
      expect((await post(id, 'refuse-extension', tok.commander, {})).statusCode).toBe(400);
      const refused = (await post(id, 'refuse-extension', tok.commander, { reason: 'pump is on the truck' })).json() as Json;
      expect(refused.extensionRequest).toBeNull();
      expect(refused.history.at(-1)).toMatchObject({ action: 'refuse-extension', reason: 'pump is on the truck', details: { request: { reason: 'pump on order', until } } });
      expect((await get('/api/cases?extensionRequested=true', tok.commander)).json().items.map((x: { id: string }) => x.id)).not.toContain(id);
      const none = await post(id, 'refuse-extension', tok.commander, { reason: 'again' });
      expect(none.statusCode).toBe(400);
      expect(none.json().message).toContain('no pending extension request');

      expect((await post(id, 'request-extension', tok.crew, { reason: 'second pump needed' })).statusCode).toBe(200);
      const ext = (await post(id, 'extend', tok.commander, { reason: 'approved', until })).json() as Json;
      expect(ext).toMatchObject({ extensionRequest: null, deadline: until, extensionCount: 1 });
      expect(ext.history.at(-1)).toMatchObject({ action: 'extend', details: { request: { reason: 'second pump needed', until: null } } });
      expect((await post(id, 'request-extension', tok.crew, { reason: 'too early', until: c0.deadline })).statusCode).toBe(400);
    });

    it('a handled case shows when it was handled and the verification check verify enforces: out of range, back for too short a time, then ready', async () => {
      const high = await freshCase(true);
      expect((await post(high, 'accept', tok.crew)).json().handledAt).toBeNull();
      const handledAt = new Date(clock).toISOString();
      const h1 = (await post(high, 'handle', tok.crew, { notes: 'done' })).json() as Json;
      expect(h1.handledAt).toBe(handledAt);
      expect(h1.verification).toEqual({ inRange: false, backSince: null, windowMs: 10 * MIN, ready: false });
      expect((await post(high, 'verify', tok.verifier)).statusCode).toBe(409);
      const device = (await show(high) as unknown as { device: string }).device;
      clock += MIN;
      await send(device, { level_m: 0.1 });
      const back = new Date(clock).toISOString();
      clock += 5 * MIN;
      expect((await show(high)).verification).toEqual({ inRange: true, backSince: back, windowMs: 10 * MIN, ready: false });
      expect((await post(high, 'verify', tok.verifier)).statusCode).toBe(409);
      clock += 5 * MIN;
      const listed = (await get('/api/cases?state=handled', tok.verifier)).json().items.find((x: { id: string }) => x.id === high);
      expect(listed.verification).toEqual({ inRange: true, backSince: back, windowMs: 10 * MIN, ready: true });
      expect(listed.handledAt).toBe(handledAt);
      expect((await post(high, 'verify', tok.verifier)).statusCode).toBe(200);
      expect((await show(high)).verification).toBeUndefined();
    });

    it('an action resent with its actionId is applied once: 200, x-cs-replayed, nothing written or announced', async () => {
      const id = await freshCase();
      const first = await post(id, 'accept', tok.crew, { actionId: 'crew-0001-accept' });
      expect(first.statusCode).toBe(200);
      expect(first.headers['x-cs-replayed']).toBeUndefined();
      const n = (await show(id)).history.length;
      const seen = events.length;
      clock += MIN;
      const again = await post(id, 'accept', tok.crew, { actionId: 'crew-0001-accept' });
      expect(again.statusCode).toBe(200);
      expect(again.headers['x-cs-replayed']).toBe('1');
      expect(again.json()).toMatchObject({ id, state: 'accepted' });
      expect((await show(id)).history).toHaveLength(n);
      expect(events.length).toBe(seen);
      // A note resent: one note.
      for (let i = 0; i < 3; i++) expect((await post(id, 'note', tok.crew, { notes: 'cover back', actionId: 'crew-0001-note1' })).statusCode).toBe(200);
      expect((await show(id)).history.filter((h) => h.action === 'note')).toHaveLength(1);
    });

    it('the same actionId for another action or case is 409 CS_CLOUD_ACTION_ID_REUSED; a refused action records no id; ids are checked', async () => {
      const a = await freshCase();
      const b = await freshCase();
      expect((await post(a, 'note', tok.crew, { notes: 'x', actionId: 'reused-id-1' })).statusCode).toBe(200);
      for (const [id, action] of [[a, 'on-site'], [b, 'note']]) {
        const r = await post(id, action, tok.crew, { notes: 'x', actionId: 'reused-id-1' });
        expect(r.statusCode, `${action} on ${id}`).toBe(409);
        expect(r.json().code).toBe('CS_CLOUD_ACTION_ID_REUSED');
      }
      // Refused (illegal in this state), then legal with the same id once the state allows it.
      expect((await post(a, 'handle', tok.crew, { actionId: 'handle-early-1' })).statusCode).toBe(409);
      expect((await post(a, 'accept', tok.crew)).statusCode).toBe(200);
      expect((await post(a, 'handle', tok.crew, { actionId: 'handle-early-1' })).statusCode).toBe(200);
      for (const bad of ['short', 'x'.repeat(65), 'has space1', 'ümlaut-id']) {
        const r = await post(b, 'note', tok.crew, { notes: 'x', actionId: bad });
        expect(r.statusCode, bad).toBe(400);
        expect(r.json().code).toBe('CS_CLOUD_VALIDATION');
      }
      // Another unit's crew replaying someone's id learns nothing: 404 as for any of that unit's cases.
      expect((await post(a, 'note', tok.otherCrew, { notes: 'x', actionId: 'reused-id-1' })).statusCode).toBe(404);
    });

    it('two resends in flight at once with the same actionId: one applied, the other answered as a replay', async () => {
      const id = await freshCase();
      const base = await cloud.app.listen({ host: '127.0.0.1', port: 0 });
      try {
        for (const [action, actionId] of [['note', 'race-note-0001'], ['accept', 'race-accept-01'], ['on-site', 'race-onsite-01']]) {
          const sendOne = () => fetch(`${base}/api/cases/${id}/${action}`, {
            method: 'POST', headers: { authorization: `Bearer ${tok.crew}`, 'content-type': 'application/json' },
            body: JSON.stringify({ notes: 'queued offline', actionId }),
          });
          const rs = await Promise.all([sendOne(), sendOne(), sendOne()]);
          expect(rs.map((r) => r.status), action).toEqual([200, 200, 200]);
          expect(rs.filter((r) => r.headers.get('x-cs-replayed') === '1'), action).toHaveLength(2);
        }
        const c = await show(id);
        expect(c.history.map((h) => h.action)).toEqual(['register', 'dispatch', 'note', 'accept', 'on-site']);
      } finally {
        await cloud.app.close().catch(() => undefined);
      }
    });
  });
});
