import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEMO_DISTRICT, type Demo } from '../../cli/demo.ts';
import { simSet } from '../../cli/run-sim.ts';
import { eventually } from '../helpers/process.ts';
import { withExif } from '../helpers/exif.ts';
import { DESK, PHONE, screenshot, seriousViolations, signIn, skipReason, watchErrors, chineseLeft, demoUser, openDemo, type Browser, type DemoEnv, type Page } from './harness.ts';

/**
 * The maintenance crew's phone on the real demo (issue 11): a case arrives live, the crew works it
 * to handled with a photo; offline, a note and a handled report wait on the phone and reach the
 * server exactly once, even when a reply is lost on the way; another unit's case and photo are not
 * found. The handled case, its sensor back in range, is verified by the verifier and closes.
 */

interface HistoryRow { action: string; actor: string }
interface CaseJson { id: string; device: string; state: string; unit: string; history: HistoryRow[]; photos?: { id: string }[] }

const UNIT = 'xz-drainage';
/** A short verification window (workflow.verifyClearMs), so the crew's handled case can be verified in the test. */
const WINDOW_MS = 5000;
const TINY_JPEG = readFileSync(new URL('../fixtures/photos/tiny.jpg', import.meta.url));

/** Records the page's notifications and oscillator tones (the real ones cannot be heard or seen in a test). */
const ALERT_SPIES = `(() => {
  window.__notes = [];
  window.__tones = 0;
  const Real = window.Notification;
  function Spy(title, opts) { window.__notes.push({ title, body: opts && opts.body }); return { close() {}, onclick: null }; }
  Object.defineProperty(Spy, 'permission', { get: () => Real.permission });
  Spy.requestPermission = (...a) => Real.requestPermission(...a);
  window.Notification = Spy;
  const osc = AudioContext.prototype.createOscillator;
  AudioContext.prototype.createOscillator = function () { window.__tones++; return osc.call(this); };
})()`;


describe.skipIf(skipReason !== null)("the crew's phone in a browser", () => {
  let env: DemoEnv | undefined;
  let dir: string;
  let demo: Demo;
  let browser: Browser;
  let base: string;
  let crew: { username: string; password: string };
  let verifier: { username: string; password: string };
  /** The case the crew reported handled in the first walk, for the verifier's. */
  let handled: string | undefined;

  beforeAll(async () => {
    env = await openDemo('crew', { verifyClearMs: WINDOW_MS });
    ({ dir, demo, base, browser } = env);
    crew = demoUser(join(dir, 'demo-users.json'), 'crew', UNIT);
    verifier = demoUser(join(dir, 'demo-users.json'), 'verifier');
  }, 60_000);

  afterAll(async () => {
    await env?.close();
  });

  async function apiCase(id: string): Promise<CaseJson> {
    const res = await demo.cloud.app.inject({ url: `/api/cases/${id}`, headers: { authorization: `Bearer ${demo.tokens.operator}` } });
    expect(res.statusCode).toBe(200);
    return res.json() as CaseJson;
  }

  /** Writes a breaching value into a simulated sensor and waits for the case it opens. */
  async function breach(device: string, assignment: string): Promise<string> {
    await simSet({ districtFile: DEMO_DISTRICT, dataDir: dir, device, assignment });
    return eventually(async () => {
      const res = await demo.cloud.app.inject({ url: `/api/cases?device=${device}`, headers: { authorization: `Bearer ${demo.tokens.operator}` } });
      return (res.json() as { items: { id: string }[] }).items[0]?.id;
    }, 20_000, 100);
  }

  const count = (c: CaseJson, action: string) => c.history.filter((h) => h.action === action).length;

  /** A real JPEG, drawn and encoded by the browser. */
  async function jpeg(page: Page): Promise<Buffer> {
    // Runs in the page (a string: the tests' TypeScript has no DOM types).
    const b64 = await page.evaluate<string>(`(async () => {
      const canvas = document.createElement('canvas');
      canvas.width = 64; canvas.height = 48;
      const g = canvas.getContext('2d');
      g.fillStyle = '#2b6cb0'; g.fillRect(0, 0, 64, 48); g.fillStyle = '#f6e05e'; g.fillRect(16, 12, 32, 24);
      const blob = await new Promise((r) => canvas.toBlob(r, 'image/jpeg', 0.9));
      const bytes = new Uint8Array(await blob.arrayBuffer());
      let s = '';
      for (const x of bytes) s += String.fromCharCode(x);
      return btoa(s);
    })()`);
    return Buffer.from(b64, 'base64');
  }

  async function act(page: Page, action: string, text?: string, photo?: Buffer): Promise<void> {
    await page.locator(`[data-test="action-${action}"]`).click();
    if (text === undefined) return;
    const form = page.locator(`[data-test="form-${action}"]`);
    await form.locator('[data-test="action-text"]').fill(text);
    if (photo) {
      await form.locator('[data-test="action-photos"]').setInputFiles({ name: 'site.jpg', mimeType: 'image/jpeg', buffer: photo });
      expect(await form.locator('[data-test="photo-previews"] img').first().getAttribute('src')).toMatch(/^blob:/);
    }
    await form.locator('[data-test="action-submit"]').click();
  }

  const historyEntry = (page: Page, action: string) => page.locator(`[data-test="history-entry"][data-action="${action}"]`);

  it('a crew member sees a new case arrive live, accepts it, is on site and reports it handled with a photo', async () => {
    const context = await browser.newContext({ ...PHONE, permissions: ['notifications'] });
    const page = await context.newPage();
    await page.addInitScript(ALERT_SPIES);
    const errors = watchErrors(page);
    try {
      await signIn(page, base, crew.username, crew.password);
      expect(new URL(page.url()).pathname).toBe('/crew');
      await page.locator('[data-test="empty"]').waitFor();
      await page.locator('[data-test="live"][data-state="on"]').waitFor();
      // Sound needs a gesture: the button turns it on (notifications are granted to this browser).
      await page.locator('[data-test="enable-alerts"]').click();
      await page.locator('[data-test="alerts-on"]').waitFor();

      const firstCase = await breach('XZ-WL-002', 'level_m=0.9');
      const alert = page.locator('[data-test="new-case-alert"]');
      await alert.waitFor({ timeout: 15_000 });
      expect(await alert.getAttribute('role')).toBe('alert');
      const item = page.locator(`[data-test="case"][data-case-id="${firstCase}"]`);
      await item.waitFor();
      // An urgent case opened in normal mode: its class (紧急类) is shown, and no emergency period (应急).
      expect(await item.locator('[data-test="class"]').textContent()).toContain('紧急类');
      expect(await item.locator('[data-test="emergency-period"]').count()).toBe(0);
      expect(await item.locator('[data-test="countdown"]').textContent()).toMatch(/剩余/);
      // The tone played (two beeps) and the browser's notification names the case.
      const heard = await page.evaluate<{ notes: { title: string; body: string }[]; tones: number }>('({ notes: window.__notes, tones: window.__tones })');
      expect(heard.tones).toBe(2);
      expect(heard.notes).toEqual([{ title: '新派遣案件', body: await item.locator('.case-title').textContent() }]);
      await screenshot(page, 'crew-list');

      await alert.locator('[data-test="new-case-open"]').click();
      await page.waitForURL(`**/crew/cases/${firstCase}`);
      await page.locator('[data-test="readings-chart"]').first().waitFor();
      expect(await page.locator('[data-test="geo-link"]').getAttribute('href')).toMatch(/^geo:22\.\d+,113\.\d+$/);
      expect(await page.locator('[data-test="amap-link"]').getAttribute('href')).toMatch(/^https:\/\/uri\.amap\.com\/marker\?position=113\.\d+,22\.\d+&name=/);

      await act(page, 'accept');
      await historyEntry(page, 'accept').waitFor();
      await act(page, 'on-site');
      await historyEntry(page, 'on-site').waitFor();
      await screenshot(page, 'crew-case');
      await act(page, 'handle', '井内积水已抽排，井盖复位。', await jpeg(page));
      await historyEntry(page, 'handle').waitFor();
      // A photo without EXIF time or position carries no flag.
      const photo = page.locator('[data-test="photo"]');
      await photo.first().waitFor();
      expect(await photo.getAttribute('data-flags')).toBe('');
      expect(await page.locator('[data-test="action-handle"]').count()).toBe(0);

      const c = await apiCase(firstCase);
      expect(c.state).toBe('handled');
      expect([count(c, 'accept'), count(c, 'on-site'), count(c, 'handle')]).toEqual([1, 1, 1]);
      expect(c.photos).toHaveLength(1);
      expect(c.history.find((h) => h.action === 'handle')?.actor).toBe(`user:${crew.username}`);
      expect(errors).toEqual([]);
      handled = firstCase;
    } finally {
      await context.close();
    }
  }, 60_000);

  it("the crew's handled case, its sensor back in range for the window, is verified by the verifier on a desk and closes", async () => {
    expect(handled, 'the walk above left a handled case').toBeDefined();
    await simSet({ districtFile: DEMO_DISTRICT, dataDir: dir, device: 'XZ-WL-002', assignment: 'level_m=0.02' });
    const context = await browser.newContext(DESK);
    const page = await context.newPage();
    const errors = watchErrors(page);
    try {
      await signIn(page, base, verifier.username, verifier.password);
      expect(new URL(page.url()).pathname).toBe('/verify');
      const row = page.locator(`[data-test="queue-case"][data-case-id="${handled}"]`);
      await row.waitFor({ timeout: 10_000 });
      await row.locator('[data-test="readiness"][data-ready="ready"]').waitFor({ timeout: 20_000 });
      await row.locator('[data-test="case-link"]').click();
      await page.waitForURL(`**/verify/cases/${handled}`);
      await page.locator('[data-test="verify"]:enabled').waitFor();
      await page.locator('[data-test="verify"]').click();
      await page.locator('[data-test="done"][data-action="verify"]').waitFor();
      const c = await apiCase(handled!);
      expect(c.state).toBe('closed');
      expect(c.history.find((h) => h.action === 'verify')?.actor).toBe(`user:${verifier.username}`);
      expect(errors).toEqual([]);
    } finally {
      await context.close();
    }
  }, 60_000);

  it('offline, a progress note and a handled report wait on the phone and reach the server exactly once, a lost reply included; a refused one is shown, not retried', async () => {
    const [second, third] = await Promise.all([breach('XZ-WL-003', 'level_m=0.9'), breach('XZ-WL-004', 'level_m=0.9')]);
    const context = await browser.newContext(PHONE);
    const page = await context.newPage();
    const errors = watchErrors(page);
    try {
      await signIn(page, base, crew.username, crew.password);
      await page.goto(`${base}/crew/cases/${second}`);
      await act(page, 'accept');
      await historyEntry(page, 'accept').waitFor();

      await context.setOffline(true);
      await act(page, 'note', '已到达现场，正在排水。');
      await page.locator('[data-test="pending-count"]').filter({ hasText: '1 个操作待发送' }).waitFor();
      // The camera's clock says 2025: the photo was taken before the case opened.
      const old = withExif(await jpeg(page), { dateTimeOriginal: '2025:06:01 09:30:00', offsetTimeOriginal: '+08:00' });
      await act(page, 'handle', '排水完毕，水位恢复正常。', old);
      await page.locator('[data-test="pending-count"]').filter({ hasText: '2 个操作待发送' }).waitFor();
      expect(await page.locator('[data-test="pending-action"]').count()).toBe(2);
      // Nothing reached the server while offline.
      let c = await apiCase(second);
      expect([count(c, 'note'), count(c, 'handle'), c.state]).toEqual([0, 0, 'accepted']);

      // Back online, the handled report's first reply is lost after the server applied it: the
      // phone sends it again with the same actionId and the server answers without applying it twice.
      let cut = 0;
      await page.route('**/api/cases/*/handle', async (route) => {
        if (cut++ > 0) return route.continue();
        await route.fetch();
        await route.abort('internetdisconnected');
      });
      await context.setOffline(false);
      await page.locator('[data-test="pending"]').waitFor({ state: 'detached', timeout: 20_000 });
      expect(cut).toBeGreaterThanOrEqual(2);
      await historyEntry(page, 'handle').waitFor();

      c = await apiCase(second);
      expect(c.state).toBe('handled');
      expect([count(c, 'note'), count(c, 'handle')]).toEqual([1, 1]);
      expect(c.photos).toHaveLength(1);
      const flag = page.locator('[data-test="photo-flag"][data-flag="taken-before-case"]');
      await flag.waitFor();
      expect(await flag.textContent()).toContain('拍摄时间早于立案');

      // Accepted offline, but the operator voided the case meanwhile: the 409 is shown and not sent again.
      await page.goto(`${base}/crew/cases/${third}`);
      await page.locator('[data-test="action-accept"]').waitFor();
      await context.setOffline(true);
      await act(page, 'accept');
      await page.locator('[data-test="pending-count"]').filter({ hasText: '1 个操作待发送' }).waitFor();
      const voided = await demo.cloud.app.inject({
        method: 'POST', url: `/api/cases/${third}/void`, headers: { authorization: `Bearer ${demo.tokens.operator}` }, payload: { reason: 'sensor test, not a flood' },
      });
      expect(voided.statusCode).toBe(200);
      let accepts = 0;
      page.on('request', (r) => { if (r.method() === 'POST' && r.url().endsWith(`/api/cases/${third}/accept`)) accepts++; });
      await context.setOffline(false);
      const refused = page.locator('[data-test="pending-refused"]');
      await refused.waitFor();
      expect(await refused.getAttribute('role')).toBe('alert');
      expect(await refused.textContent()).toContain('409');
      await page.waitForTimeout(2500); // past the first retry a lost connection would get
      expect(accepts).toBe(1);
      expect(count(await apiCase(third), 'accept')).toBe(0);
      await page.locator('[data-test="pending-dismiss"]').click();
      await page.locator('[data-test="pending"]').waitFor({ state: 'detached' });
      // The one error expected: the browser logs the 409.
      expect(errors.filter((e) => !e.includes(`409 (Conflict) (${base}/api/cases/${third}/accept)`))).toEqual([]);
    } finally {
      await context.close();
    }
  }, 60_000);

  it("does not open another unit's case nor fetch its photo; both pages pass axe and switch every string to English and back; an extension is requested with a reason", async () => {
    const [other, open] = await Promise.all([breach('XZ-PL-001', 'pressure_mpa=0.05'), breach('XZ-WL-005', 'level_m=0.9')]);
    const otherUnit = (await apiCase(other)).unit;
    expect(otherUnit).not.toBe(UNIT);
    // That unit's crew puts a photo on its case; its own crew can fetch it.
    const otherCrew = demo.tokens[`crew:${otherUnit}`];
    const form = new FormData();
    form.append('photo', new Blob([TINY_JPEG], { type: 'image/jpeg' }), 'site.jpg');
    const up = await fetch(`${base}/api/cases/${other}/photos`, { method: 'POST', headers: { authorization: `Bearer ${otherCrew}` }, body: form });
    expect(up.status, await up.clone().text()).toBe(201);
    const [{ id: otherPhoto }] = ((await up.json()) as { photos: { id: string }[] }).photos;
    expect((await demo.cloud.app.inject({ url: `/api/photos/${otherPhoto}`, headers: { authorization: `Bearer ${otherCrew}` } })).statusCode).toBe(200);
    const context = await browser.newContext(PHONE);
    const page = await context.newPage();
    const errors = watchErrors(page);
    try {
      await signIn(page, base, crew.username, crew.password);
      await page.goto(`${base}/crew/cases/${other}`);
      await page.locator('[data-test="not-found"]').waitFor();
      expect(await page.evaluate(async (id) => (await fetch(`/api/cases/${id}`)).status, other)).toBe(404);
      // Nor its photo: the crew's session gets 404 for the other unit's photo URL.
      expect(await page.evaluate(async (id) => (await fetch(`/api/photos/${id}`, { credentials: 'include' })).status, otherPhoto)).toBe(404);

      for (const path of ['/crew', `/crew/cases/${open}`]) {
        await page.goto(`${base}${path}`);
        await page.locator(path === '/crew' ? `[data-test="case"][data-case-id="${open}"]` : '[data-test="action-accept"]').waitFor();
        expect(await seriousViolations(page), path).toEqual([]);
        const h1 = await page.locator('h1').textContent();
        await page.locator('[data-test="lang"]').click();
        await expect.poll(() => page.locator('html').getAttribute('lang')).toBe('en');
        expect(await page.locator('[data-test="who"]').textContent()).toContain('Crew');
        if (path === '/crew') expect(await page.locator('h1').textContent()).toBe('My cases');
        else expect(await page.locator('#h-where').textContent()).toBe('Where');
        // Every visible string is English: no CJK outside data (titles, addresses, notes: marked data-raw)
        // and outside the switch's own label (the other language's name, marked with its lang).
        expect(await chineseLeft(page), path).toEqual([]);
        await page.locator('[data-test="lang"]').click();
        await expect.poll(() => page.locator('h1').textContent()).toBe(h1);
      }
      // On the open case the crew asks for more time, with a reason; the request shows until a commander decides.
      await act(page, 'request-extension', '排水泵故障，等待备件。');
      await page.locator('[data-test="extension-request"]').filter({ hasText: '排水泵故障' }).waitFor();
      expect(await page.locator('[data-test="action-request-extension"]').count()).toBe(0);
      expect((await apiCase(open)).history.filter((h) => h.action === 'request-extension')).toHaveLength(1);
      // The errors expected: the browser logs the 404s of the other unit's case and photo.
      expect(errors.filter((e) => !e.includes(`404 (Not Found) (${base}/api/cases/${other})`) && !e.includes(`404 (Not Found) (${base}/api/photos/${otherPhoto})`))).toEqual([]);
    } finally {
      await context.close();
    }
  }, 60_000);
});
