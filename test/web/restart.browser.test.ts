import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildCloud, type Cloud } from '../../cloud/app.ts';
import { topics } from '../../lib/topics.ts';
import { district, profiles, reading } from '../cloud/fixtures.ts';
import { DESK, launch, seriousViolations, signIn, skipReason, watchErrors, type Browser } from './harness.ts';

/**
 * Issue 11: the live updates keep working across a server restart. An operator's alarms page (which
 * refreshes only from the event stream) stays open while the cloud stops and a new one starts on the
 * same port and database: the header says it is reconnecting, then live again, and an alarm raised by
 * the new process reaches the page with no reload. A stream refused because the session ended is
 * not retried forever: the page goes to sign-in.
 */
describe.skipIf(skipReason !== null)('the pages across a cloud restart', () => {
  let dir: string;
  let browser: Browser;
  let cloud: Cloud | undefined;
  let port = 0;

  async function startCloud(): Promise<string> {
    cloud = await buildCloud({ db: { kind: 'sqlite', file: join(dir, 'cs.db') }, district, profiles, escalation: false });
    await cloud.start();
    const base = await cloud.app.listen({ host: '127.0.0.1', port });
    port = Number(new URL(base).port);
    return base;
  }

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'cs-web-restart-'));
    browser = await launch();
  }, 60_000);

  afterAll(async () => {
    await browser?.close();
    await cloud?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('says it is reconnecting while the cloud is down, and shows an alarm raised after the restart without a reload', async () => {
    const base = await startCloud();
    await cloud!.users.create('op', 'operator', undefined, 'restart-test-pass-1');
    const context = await browser.newContext(DESK);
    const page = await context.newPage();
    const errors = watchErrors(page);
    try {
      await signIn(page, base, 'op', 'restart-test-pass-1');
      await page.goto(`${base}/operator/alarms`);
      const live = page.locator('[data-test="live"]');
      await expect.poll(() => live.getAttribute('data-state'), { timeout: 10_000 }).toBe('on');
      expect(await page.locator('[data-test="alarm"]').count()).toBe(0);

      // A mark in the page's memory: it survives only if the page is never reloaded.
      await page.evaluate(() => { (globalThis as unknown as { csMark: number }).csMark = 42; });
      await cloud!.stop();
      await expect.poll(() => live.getAttribute('data-state'), { timeout: 15_000 }).toBe('reconnecting');
      expect(await live.textContent()).toBe('正在重连…');

      await startCloud();
      // EventSource retries on its own (the server's default retry is a few seconds; the page backs off to 15 s at most).
      await expect.poll(() => live.getAttribute('data-state'), { timeout: 30_000, interval: 250 }).toBe('on');
      const t = Date.now();
      await cloud!.ingest('gw-xz-jida', topics.up('gw-xz-jida', 'XZ-WL-001'), reading('XZ-WL-001', 1, t, { level_m: 0.92 }));
      const row = page.locator('[data-test="alarm"][data-device="XZ-WL-001"]');
      await row.first().waitFor({ state: 'visible', timeout: 10_000 });
      expect(await page.evaluate(() => (globalThis as unknown as { csMark?: number }).csMark)).toBe(42);
      expect(await seriousViolations(page)).toEqual([]);
      expect(errors).toEqual([]);
    } finally {
      await context.close();
    }
  }, 90_000);

  it('goes to sign-in, not reconnecting forever, when the stream is refused because the session ended', async () => {
    await cloud?.stop();
    const base = await startCloud();
    await cloud!.users.create('op2', 'operator', undefined, 'restart-test-pass-2');
    const context = await browser.newContext(DESK);
    const page = await context.newPage();
    const errors = watchErrors(page);
    try {
      await signIn(page, base, 'op2', 'restart-test-pass-2');
      await page.goto(`${base}/operator/alarms`);
      const live = page.locator('[data-test="live"]');
      await expect.poll(() => live.getAttribute('data-state'), { timeout: 10_000 }).toBe('on');

      // Signed out elsewhere: the server ends the session, the browser keeps its cookie.
      const cookies = await context.cookies();
      expect(await page.evaluate(async () => (await fetch('/api/session', { method: 'DELETE' })).status)).toBe(204);
      await context.addCookies(cookies);
      // The stream drops (a restart); its reconnect is refused (401): the page goes to sign-in and stops asking.
      await cloud!.stop();
      await startCloud();
      await page.waitForURL((u) => u.pathname === '/signin', { timeout: 30_000 });
      expect(new URL(page.url()).searchParams.get('next')).toBe('/operator/alarms');
      let streams = 0;
      page.on('request', (r) => { if (r.url().endsWith('/api/events')) streams++; });
      await page.waitForTimeout(2500);
      expect(streams).toBe(0);
      expect(errors).toEqual([]);
    } finally {
      await context.close();
    }
  }, 90_000);
});
