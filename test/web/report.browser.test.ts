import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chineseLeft, DESK, demoUser, openDemo, screenshot, seriousViolations, signIn, skipReason, watchErrors, type Browser, type DemoEnv } from './harness.ts';

/**
 * The printable monthly report and the public ranking (README "The monthly report"): a month of
 * people's cases on a demo whose clock starts on 13 October 2026 (a working Tuesday): one closed on
 * time, one left to run past its deadline, one self-corrected on the spot. The report shows the
 * ranking, the overdue case under its unit and the chain digest, reads in Chinese and English, prints
 * to a PDF in Debian's chromium; an admin publishes the ranking and anyone can then read it.
 */
const START = Date.parse('2026-10-13T01:00:00Z');
const DAY = 86_400_000;

describe.skipIf(skipReason !== null)('the monthly report in a browser', () => {
  let env: DemoEnv | undefined;
  let browser: Browser;
  let base: string;
  let skew = 0;
  const t0 = Date.now();
  const now = () => START + (Date.now() - t0) + skew;
  const ids: Record<string, string> = {};

  beforeAll(async () => {
    env = await openDemo('report', { now });
    ({ base, browser } = env);
    const { cloud } = env.demo;
    const inspector = await cloud.tokens.create('inspector');
    const admin = await cloud.tokens.create('admin');
    const call = async (path: string, token: string, body: unknown) => {
      const r = await fetch(`${base}${path}`, { method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, body: JSON.stringify(body) });
      const json = (await r.json()) as { id: string };
      expect(r.status, `${path}: ${JSON.stringify(json)}`).toBeLessThan(300);
      return json;
    };
    const register = async (category: string, description: string, extra: Record<string, unknown> = {}) =>
      (await call('/api/cases', inspector, { category, description, location: { lat: 22.2702, lon: 113.5503, address: '凤凰北路 18 号' }, ...extra })).id;
    ids.garbage = await register('E0102', '人行道上暴露垃圾一堆');
    ids.ads = await register('E0201', '电线杆上的非法小广告');
    ids.fixed = await register('E0201', '小广告已当场清除', { selfCorrected: true });
    for (const action of ['accept', 'handle', 'verify']) await call(`/api/cases/${ids.garbage}/${action}`, admin, action === 'handle' ? { notes: '已清运' } : {});
    // Ten days on (23 October): the small ads case (1 working day) is overdue; still October.
    skew = 10 * DAY;
  }, 90_000);
  afterAll(async () => {
    await env?.close();
  });

  it('shows the month\'s ranking, the overdue case under its unit and the chain digest, in Chinese and English, and prints to PDF', async () => {
    const context = await browser.newContext({ ...DESK, locale: 'zh-CN' });
    const page = await context.newPage();
    const errors = watchErrors(page);
    try {
      const admin = demoUser(env!.usersFile, 'admin');
      await signIn(page, base, admin.username, admin.password);
      await page.goto(`${base}/report?month=2026-10`);
      const ranking = page.locator('[data-test="ranking-row"]');
      await expect.poll(() => ranking.count(), { timeout: 20_000 }).toBe(env!.demo.district.units.length);
      expect(await page.locator('[data-test="report-period"]').textContent()).toContain('2026-10');
      // The municipal office: two due (the closed one and the overdue one), one on time; the
      // self-corrected case is not a unit's. (Other units get the demo's sensor cases: devices silent
      // while the clock jumped ten days.)
      const municipal = page.locator('[data-test="ranking-row"][data-unit="xz-municipal"]');
      const cells = async () => (await municipal.locator('td').allTextContents()).slice(3, 7);
      expect(await cells()).toEqual(['2', '1', '1', '50.0%']);
      expect(Number(await page.locator('[data-test="total-due"]').textContent())).toBeGreaterThanOrEqual(2);
      const overdue = page.locator('[data-test="overdue-unit"][data-unit="xz-municipal"]');
      await expect.poll(() => overdue.textContent(), { timeout: 10_000 }).toContain(ids.ads);
      expect(await overdue.textContent()).toContain('非法小广告'); // the case's title: its category and address
      expect(await overdue.textContent()).not.toContain(ids.garbage);
      expect(await page.locator('[data-test="report-chain"]').textContent()).toMatch(/[0-9a-f]{64}/);
      // The page states the digest the API gives. The month is still running, so the escalation timer may add
      // rows to the overdue case between the two reads (the digest then moves): reload until they agree.
      await expect.poll(async () => {
        const api = await page.evaluate(async () => (await (await fetch('/api/evaluation?month=2026-10')).json()) as { chain: { digest: string } });
        const shown = await page.locator('[data-test="report-chain"]').textContent();
        if (shown?.includes(api.chain.digest)) return true;
        await page.reload();
        await page.locator('[data-test="report-chain"]').waitFor({ timeout: 15_000 });
        return false;
      }, { timeout: 45_000, interval: 500 }).toBe(true);
      await expect.poll(() => page.locator('[data-test="report-chart-line"] svg').count()).toBe(1);
      await expect.poll(() => page.locator('[data-test="report-chart-bars"] svg').count()).toBe(1);
      expect(await seriousViolations(page)).toEqual([]);
      await screenshot(page, 'monthly-report');

      // Printed: no controls, no navigation; saved as a PDF by chromium.
      await page.emulateMedia({ media: 'print' });
      expect(await page.locator('[data-test="report-print"]').isVisible()).toBe(false);
      expect(await page.locator('header.top').isVisible()).toBe(false);
      const pdfFile = join(env!.dir, 'monthly-report.pdf');
      await page.pdf({ path: pdfFile, format: 'A4', landscape: true, printBackground: true });
      const pdf = readFileSync(pdfFile);
      expect(pdf.subarray(0, 5).toString('latin1')).toBe('%PDF-');
      expect(pdf.toString('latin1').match(/\/Type\s*\/Page[^s]/g)?.length ?? 0).toBeGreaterThanOrEqual(1);
      await page.emulateMedia({ media: 'screen' });

      await page.locator('[data-test="lang"]').click();
      await expect.poll(() => page.locator('h1').textContent()).toBe('Monthly comprehensive evaluation');
      expect(await chineseLeft(page)).toEqual([]);
      expect(errors).toEqual([]);
    } finally {
      await context.close();
    }
  }, 90_000);

  it('an admin publishes the ranking; anyone then reads it without signing in, and not once it is withdrawn', async () => {
    const anon = await browser.newContext({ ...DESK, locale: 'zh-CN' });
    const visitor = await anon.newPage();
    const context = await browser.newContext({ ...DESK, locale: 'zh-CN' });
    const page = await context.newPage();
    const errors = watchErrors(page);
    try {
      await visitor.goto(`${base}/ranking?month=2026-10`);
      await expect.poll(() => visitor.locator('[data-test="ranking-off"]').count(), { timeout: 15_000 }).toBe(1);

      const admin = demoUser(env!.usersFile, 'admin');
      await signIn(page, base, admin.username, admin.password);
      await page.goto(`${base}/report?month=2026-10`);
      const publish = page.locator('[data-test="report-publish"]');
      await expect.poll(() => publish.count(), { timeout: 20_000 }).toBe(1);
      await publish.check();
      await expect.poll(() => page.evaluate(async () => ((await (await fetch('/api/evaluation/public')).json()) as { enabled: boolean }).enabled)).toBe(true);

      await visitor.reload();
      const rows = visitor.locator('[data-test="ranking-row"]');
      await expect.poll(() => rows.count(), { timeout: 15_000 }).toBe(env!.demo.district.units.length);
      expect(await visitor.locator('[data-test="ranking-table"]').textContent()).not.toContain(ids.ads);
      expect(await seriousViolations(visitor)).toEqual([]);
      await screenshot(visitor, 'public-ranking');

      await publish.uncheck();
      await expect.poll(() => page.evaluate(async () => ((await (await fetch('/api/evaluation/public')).json()) as { enabled: boolean }).enabled)).toBe(false);
      await visitor.reload();
      await expect.poll(() => visitor.locator('[data-test="ranking-off"]').count(), { timeout: 15_000 }).toBe(1);
      expect(errors).toEqual([]);
    } finally {
      await context.close();
      await anon.close();
    }
  }, 90_000);

  // Guards against a month 13 taken from the address, and an older answer overwriting a newer one.
  it('falls back to the current month for a month 13, and shows the last month asked when an older answer comes late', async () => {
    const context = await browser.newContext({ ...DESK, locale: 'zh-CN' });
    const page = await context.newPage();
    try {
      const admin = demoUser(env!.usersFile, 'admin');
      await signIn(page, base, admin.username, admin.password);
      await page.goto(`${base}/report?month=2026-13`);
      const ranking = page.locator('[data-test="ranking-row"]');
      await expect.poll(() => ranking.count(), { timeout: 20_000 }).toBe(env!.demo.district.units.length);
      // The browser's current month (its own clock, not the demo's).
      const fallback = await page.locator('[data-test="report-month"]').inputValue();
      expect(fallback).toMatch(/^\d{4}-(0[1-9]|1[0-2])$/);
      expect(await page.locator('[data-test="report-period"]').textContent()).toContain(fallback);
      expect(await page.locator('[data-test="report-period"]').textContent()).not.toContain('2026-13');

      // Of the 13 months ending 2026-10, 2026-10 alone is not among those ending 2026-09: its answer comes 2.5 s late.
      let slow = 0;
      const isLate = (u: URL) => u.pathname === '/api/evaluation' && u.searchParams.get('month') === '2026-10';
      await page.route(isLate, async (route) => {
        slow++;
        await new Promise((r) => setTimeout(r, 2500));
        await route.continue().catch(() => {});
      });
      // The late answer has reached the page (or the page gave up on it).
      const lateDone = new Promise<void>((resolve) => {
        const done = (q: { url(): string }) => { if (isLate(new URL(q.url()))) resolve(); };
        page.on('requestfinished', done);
        page.on('requestfailed', done);
      });
      const month = page.locator('[data-test="report-month"]');
      await month.fill('2026-09');
      await expect.poll(() => page.locator('[data-test="report-period"]').textContent()).toContain('2026-09');
      await expect.poll(() => ranking.count(), { timeout: 20_000 }).toBe(env!.demo.district.units.length);
      await month.fill('2026-10');
      await month.fill('2026-09');
      await expect.poll(() => slow).toBe(1);
      await lateDone;
      // Time for the page to handle it.
      await new Promise((r) => setTimeout(r, 500));
      const september = await page.evaluate(async () => ((await (await fetch('/api/evaluation?month=2026-09')).json()) as { chain: { digest: string } }).chain.digest);
      expect(await page.locator('[data-test="report-chain"]').textContent()).toContain(september);
      expect(await page.locator('[data-test="overdue-unit"][data-unit="xz-municipal"]').count()).toBe(0);
    } finally {
      await context.close();
    }
  }, 90_000);
});
