import { createI18n } from 'vue-i18n';

/**
 * Every string the pages show comes from a catalogue: src/locales/<locale>/<page>.json, one file
 * per page (the file name is the key's first part: `crew.accept`). Chinese (zh-CN) is the
 * default; the choice is kept in this browser (localStorage).
 */

export const LOCALES = ['zh-CN', 'en'] as const;
export type Locale = (typeof LOCALES)[number];
const STORE_KEY = 'cs.locale';

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- catalogues are JSON read at build time
type Catalogue = Record<string, any>;
const files = import.meta.glob<Catalogue>('./locales/*/*.json', { eager: true, import: 'default' });

function catalogues(): Record<Locale, Catalogue> {
  const out = { 'zh-CN': {}, en: {} } as Record<Locale, Catalogue>;
  for (const [path, messages] of Object.entries(files)) {
    const m = /\.\/locales\/([^/]+)\/([^/]+)\.json$/.exec(path);
    if (!m || !(LOCALES as readonly string[]).includes(m[1])) continue;
    out[m[1] as Locale][m[2]] = messages;
  }
  return out;
}

function initialLocale(): Locale {
  const saved = globalThis.localStorage?.getItem(STORE_KEY);
  return (LOCALES as readonly string[]).includes(saved ?? '') ? (saved as Locale) : 'zh-CN';
}

export const i18n = createI18n<false>({
  legacy: false,
  locale: initialLocale(),
  fallbackLocale: 'zh-CN',
  messages: catalogues() as Record<string, any>,
  missingWarn: import.meta.env.DEV,
  fallbackWarn: false,
});

export function setLocale(locale: Locale): void {
  i18n.global.locale.value = locale;
  globalThis.localStorage?.setItem(STORE_KEY, locale);
  document.documentElement.lang = locale;
}

export function currentLocale(): Locale {
  return i18n.global.locale.value as Locale;
}
