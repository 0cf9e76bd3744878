/**
 * Open311 services are the categories of the case catalogue (cloud/catalogue/, issue 13): the
 * service_code is the category's code, the name and group come from the catalogue in the
 * caller's language (Chinese unless Accept-Language prefers English).
 */

export type Lang = 'zh' | 'en';

export interface ServiceInfo {
  code: string;
  name: Record<Lang, string>;
  /** The major class the category belongs to. */
  group: Record<Lang, string>;
  /** 部件 (component) or 事件 (event). */
  kind: 'component' | 'event';
  keywords: string[];
}

export interface ServiceCatalogue {
  list(): ServiceInfo[];
  get(code: string): ServiceInfo | undefined;
}

export function catalogueOf(services: ServiceInfo[]): ServiceCatalogue {
  const byCode = new Map(services.map((s) => [s.code, s]));
  return { list: () => services, get: (code) => byCode.get(code) };
}

/** English when the caller's Accept-Language puts English before Chinese; Chinese otherwise. */
export function langOf(acceptLanguage: string | undefined): Lang {
  const tags = (acceptLanguage ?? '').toLowerCase().split(',').map((t) => t.trim().split(';')[0]);
  const en = tags.findIndex((t) => t.startsWith('en'));
  const zh = tags.findIndex((t) => t.startsWith('zh'));
  return en >= 0 && (zh < 0 || en < zh) ? 'en' : 'zh';
}

/** GET services.{format}: one service per category. */
export function serviceJson(s: ServiceInfo, lang: Lang): Record<string, unknown> {
  const kind = s.kind === 'component' ? (lang === 'zh' ? '部件' : 'component') : (lang === 'zh' ? '事件' : 'event');
  return {
    service_code: s.code,
    service_name: s.name[lang],
    description: `${s.group[lang]}: ${s.name[lang]} (${kind})`,
    metadata: false,
    type: 'realtime',
    keywords: [s.name.zh, s.name.en, ...s.keywords].join(', '),
    group: s.group[lang],
  };
}
