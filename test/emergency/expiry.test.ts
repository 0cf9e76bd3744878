import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { openDatabase, type Database } from '../../cloud/db/database.ts';
import { createEventBus, type CsEvent } from '../../cloud/events.ts';
import { buildEmergency, type Emergency } from '../../cloud/emergency/service.ts';
import { WarningPolicy } from '../../cloud/emergency/policy.ts';
import { check } from '../../lib/schema.ts';
import { silentLogger } from '../../lib/log.ts';

const HOUR = 3600_000;
const T0 = Date.parse('2026-09-14T02:00:00Z');
const capDate = (ms: number) => new Date(ms).toISOString().replace(/\.\d+Z$/, '+00:00');
const warning = (id: string, sent: number, expires: number) => readFileSync(new URL('../fixtures/cap/orange-typhoon.xml', import.meta.url), 'utf8')
  .replace(/<identifier>[^<]+</, `<identifier>${id}<`)
  .replace(/<sent>[^<]+</, `<sent>${capDate(sent)}<`)
  .replace('<headline>', `<expires>${capDate(expires)}</expires><headline>`);

describe('a warning in force that expires', () => {
  let dir: string;
  let db: Database;
  let emergency: Emergency | undefined;

  beforeEach(async () => {
    dir = mkdtempSync(join(tmpdir(), 'cs-emg-exp-'));
    db = openDatabase({ kind: 'sqlite', file: join(dir, 'cs.db') });
    await db.migrate();
  });

  afterEach(async () => {
    vi.useRealTimers();
    await emergency?.stop();
    emergency = undefined;
    await db.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('used to leave the city in emergency mode in silence; the expiry timer now tells the commander once (event and audit log) and keeps the mode', async () => {
    // Only the interval and the clock are faked: the database's promises run as usual.
    vi.useFakeTimers({ toFake: ['setInterval', 'clearInterval', 'Date'], now: T0 });
    const r = check(WarningPolicy, { expiryCheckMs: 60_000 });
    if (!r.ok) throw new Error('policy');
    const events = createEventBus();
    const seen: CsEvent[] = [];
    events.subscribe((e) => seen.push(e));
    emergency = buildEmergency({
      db: db.db, write: db.write, policy: r.value, gateways: () => [], isOnline: () => false, publish: async () => {},
      now: () => Date.now(), logger: silentLogger(), events, syncMs: 24 * HOUR,
    });
    await emergency.start();
    await emergency.receiveWarning(warning('TY-1', T0, T0 + 2 * HOUR), 'feed');
    expect(emergency.state()).toMatchObject({ mode: 'emergency', level: 'II', alerts: ['TY-1'] });

    await vi.advanceTimersByTimeAsync(2 * HOUR - 60_000);
    expect(seen.filter((e) => e.type === 'emergency.warning-expired')).toEqual([]);
    await vi.advanceTimersByTimeAsync(2 * 60_000);
    await vi.waitFor(() => expect(seen.some((e) => e.type === 'emergency.warning-expired')).toBe(true));
    // Further ticks report nothing new: one event per warning and period.
    await vi.advanceTimersByTimeAsync(10 * 60_000);
    const expired = seen.filter((e) => e.type === 'emergency.warning-expired');
    expect(expired).toHaveLength(1);
    expect(expired[0]).toMatchObject({ at: new Date(T0 + 2 * HOUR).toISOString(), data: { identifier: 'TY-1', epoch: 1, level: 'II', expiredAt: new Date(T0 + 2 * HOUR).toISOString() } });
    expect(emergency.state()).toMatchObject({ mode: 'emergency', level: 'II' });
    expect((await emergency.store.log()).map((e) => e.action)).toEqual(['warning-expired', 'enter']);
    expect(await emergency.expired()).toEqual([expect.objectContaining({ identifier: 'TY-1', message: expect.stringContaining('until a commander ends it') })]);
  });
});
