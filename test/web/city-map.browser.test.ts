import { createServer, type Server } from 'node:http';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { extname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

/**
 * CityMap.vue renders on its own (docs/map-data.md): a page holding only the component, built with
 * Vite and served under the app's self-only CSP, in Debian's chromium through playwright-core. It
 * draws the bundled outlines and the devices, clusters thousands, selects on click, and fetches
 * nothing from another origin. Skips, saying why, without playwright-core or chromium.
 */

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const CHROMIUM = process.env.CS_CHROMIUM ?? '/usr/bin/chromium';
const pw = await import('playwright-core').catch(() => null);
const skip = !pw ? 'playwright-core is not installed' : !existsSync(CHROMIUM) ? `${CHROMIUM} is absent` : null;
if (skip) console.warn(`CityMap browser check skipped: ${skip}`);
const CSP = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; connect-src 'self'; font-src 'self'";

const MAIN = `
import { createApp, h, ref } from 'vue';
import { createI18n } from 'vue-i18n';
import CityMap from '${ROOT}cloud/web/app/src/components/CityMap.vue';
import map from '${ROOT}cloud/web/app/src/locales/en/map.json';
import common from '${ROOT}cloud/web/app/src/locales/en/common.json';
import './page.css';
const q = new URLSearchParams(location.search);
const n = Number(q.get('n'));
const statuses = ['normal', 'normal', 'alarm', 'silent', 'offline'] as const;
const tiers = [null, null, null, 'info', 'minor', 'major', 'critical'] as const;
// Spread over Xiangzhou's streets (22.255..22.295 N, 113.535..113.575 E), deterministic.
const devices = Array.from({ length: n }, (_, i) => ({ id: 'D' + i, lat: 22.255 + ((i * 7919) % 400) / 10000,
  lon: 113.535 + ((i * 104729) % 400) / 10000, status: statuses[i % 5], tier: tiers[i % 7], label: 'Sensor ' + i }));
const selected = ref<string | null>(null);
(window as unknown as { selections: string[] }).selections = [];
const i18n = createI18n({ legacy: false, locale: 'en', messages: { en: { map, common } } });
createApp({ render: () => h(CityMap, { devices, selected: selected.value, tiles: null, onSelect: (id: string) => {
  selected.value = id; (window as unknown as { selections: string[] }).selections.push(id); } }) }).use(i18n).mount('#app');
`;

describe.skipIf(skip)('CityMap in a browser', () => {
  let dir: string;
  let server: Server;
  let base: string;
  let browser: Awaited<ReturnType<NonNullable<typeof pw>['chromium']['launch']>>;

  beforeAll(async () => {
    // Under node_modules, so the page's imports (vue, vue-i18n) resolve as the app's do.
    mkdirSync(join(ROOT, 'node_modules', '.cache'), { recursive: true });
    dir = mkdtempSync(join(ROOT, 'node_modules', '.cache', 'cs-citymap-'));
    writeFileSync(join(dir, 'index.html'), '<!doctype html><html lang="en"><head><meta charset="utf-8"><title>map</title></head><body><div id="app"></div><script type="module" src="./main.ts"></script></body></html>');
    writeFileSync(join(dir, 'main.ts'), MAIN);
    writeFileSync(join(dir, 'page.css'), '#app { width: 900px; height: 600px; display: flex; flex-direction: column; }');
    const { build } = await import('vite');
    const vue = (await import('@vitejs/plugin-vue')).default;
    await build({ root: dir, base: './', logLevel: 'error', configFile: false, plugins: [vue()], build: { outDir: join(dir, 'dist'), assetsInlineLimit: 0 } });
    const types: Record<string, string> = { '.html': 'text/html', '.js': 'text/javascript', '.css': 'text/css', '.png': 'image/png' };
    server = createServer((req, res) => {
      const file = join(dir, 'dist', new URL(req.url ?? '/', 'http://x').pathname.replace(/\/$/, '/index.html'));
      if (!file.startsWith(join(dir, 'dist')) || !existsSync(file)) return void res.writeHead(404).end();
      res.writeHead(200, { 'content-type': types[extname(file)] ?? 'application/octet-stream', 'content-security-policy': CSP }).end(readFileSync(file));
    }).listen(0, '127.0.0.1');
    await new Promise((r) => server.once('listening', r));
    base = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
    browser = await pw!.chromium.launch({ executablePath: CHROMIUM, headless: true, args: ['--headless', '--no-sandbox', '--disable-gpu'] });
  }, 120_000);

  afterAll(async () => {
    await browser?.close();
    if (server) await new Promise((r) => server.close(r));
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  async function open(n: number) {
    const page = await browser.newPage({ viewport: { width: 1000, height: 700 } });
    const errors: string[] = [];
    const foreign: string[] = [];
    page.on('pageerror', (e) => errors.push(String(e)));
    page.on('console', (m) => { if (m.type() === 'error' && !/favicon/.test(m.location().url ?? '')) errors.push(m.text()); });
    page.on('request', (r) => { if (!r.url().startsWith(base) && !r.url().startsWith('data:')) foreign.push(r.url()); });
    await page.goto(`${base}/index.html?n=${n}`);
    await page.waitForSelector('.cs-marker, .cs-cluster');
    return { page, errors, foreign };
  }

  it('draws the district outlines with their names and every device as a titled marker; a click selects', async () => {
    const { page, errors, foreign } = await open(30);
    expect(await page.locator('.cs-district-label').allTextContents()).toEqual(['Xiangzhou', 'Doumen', 'Jinwan']);
    expect(await page.locator('.leaflet-overlay-pane path').count()).toBe(3);
    expect(await page.locator('.cs-marker').count()).toBe(30);
    expect(await page.locator('.cs-marker[title="Sensor 6 · Critical"]').count()).toBe(1);
    await page.locator('.cs-marker[title^="Sensor 4 "]').click();
    await expect.poll(() => page.evaluate(() => (globalThis as unknown as { selections: string[] }).selections)).toEqual(['D4']);
    await expect.poll(() => page.locator('.cs-pin--selected').count()).toBe(1);
    expect(await page.locator('.cs-map-legend li').count()).toBe(8);
    expect(errors).toEqual([]);
    expect(foreign).toEqual([]);
    await page.close();
  });

  it('clusters 3,000 devices, each cluster counting its members', async () => {
    const { page, errors, foreign } = await open(3000);
    expect(await page.locator('.cs-marker').count()).toBe(0);
    const counts = (await page.locator('.cs-cluster').allTextContents()).map(Number);
    expect(counts.length).toBeGreaterThan(0);
    expect(counts.reduce((a, b) => a + b, 0)).toBe(3000);
    expect(errors).toEqual([]);
    expect(foreign).toEqual([]);
    await page.close();
  });
});
