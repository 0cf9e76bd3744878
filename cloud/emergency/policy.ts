import { Type, type Static } from '@sinclair/typebox';
import type { CapAlert, CapInfo } from './cap.ts';
import { RESPONSE_LEVELS, type ResponseLevel } from '../../lib/vocabulary.ts';

/**
 * How a warning maps to emergency mode: which areas concern the city, which events count, and how
 * Guangdong's typhoon signal colours (white, blue, yellow, orange, red) and CAP severities map to
 * response levels IV (lowest) to I (highest). Data, configurable per deployment.
 */

export const LEVELS = RESPONSE_LEVELS;
export type Level = ResponseLevel;
const LevelOrNull = Type.Union([...LEVELS.map((l) => Type.Literal(l)), Type.Null()]);

export const WarningPolicy = Type.Object({
  /** Geocode prefixes (GB/T 2260 administrative codes) and area names that concern this city (an empty one would match every area). */
  areas: Type.Object({
    geocodes: Type.Array(Type.String({ minLength: 1 }), { default: ['4404'] }),
    names: Type.Array(Type.String({ minLength: 1 }), { default: ['珠海', 'Zhuhai', '香洲', 'Xiangzhou', '斗门', 'Doumen', '金湾', 'Jinwan'] }),
  }, { default: {} }),
  /** Event names (case-insensitive substrings) that trigger emergency mode (an empty one would match every event). */
  events: Type.Array(Type.String({ minLength: 1 }), { default: ['typhoon', 'tropical cyclone', '台风'] }),
  signals: Type.Object({
    white: LevelOrNull, blue: LevelOrNull, yellow: LevelOrNull, orange: LevelOrNull, red: LevelOrNull,
  }, { default: { white: null, blue: 'IV', yellow: 'III', orange: 'II', red: 'I' } }),
  /** Used when a matching event names no signal colour. */
  severities: Type.Object({
    Extreme: LevelOrNull, Severe: LevelOrNull, Moderate: LevelOrNull, Minor: LevelOrNull, Unknown: LevelOrNull,
  }, { default: { Extreme: 'I', Severe: 'II', Moderate: 'III', Minor: null, Unknown: null } }),
  /** CAP status Test and Exercise are ignored unless accepted here (drills). */
  acceptTest: Type.Boolean({ default: false }),
  acceptExercise: Type.Boolean({ default: false }),
  /** How far in the future an alert's `sent` may lie (sender clock skew) before it is refused. */
  clockSkewMs: Type.Integer({ minimum: 0, maximum: 3_600_000, default: 300_000 }),
  /** How often the warnings holding the mode are checked for expiry. */
  expiryCheckMs: Type.Integer({ minimum: 1000, maximum: 3_600_000, default: 30_000 }),
}, { additionalProperties: false });
export type WarningPolicy = Static<typeof WarningPolicy>;

export type Decision =
  | { action: 'ignore'; reason: string }
  | { action: 'enter'; level: Level; signal?: string; event: string; headline?: string; /** When the alert's last info block expires; absent when one has no `expires` (in force until cancelled). */ expires?: string }
  | { action: 'cancel'; references: string[] };

const COLOURS: Record<string, keyof WarningPolicy['signals']> = {
  white: 'white', blue: 'blue', yellow: 'yellow', orange: 'orange', red: 'red',
  白色: 'white', 蓝色: 'blue', 黄色: 'yellow', 橙色: 'orange', 红色: 'red',
};
const COLOUR_RE = /(white|blue|yellow|orange|red|白色|蓝色|黄色|橙色|红色)/i;

export function levelRank(l: Level): number {
  return LEVELS.indexOf(l);
}

/** The signal colour an info names: a parameter or event code first, then its event and headline text. */
function signalOf(info: CapInfo): keyof WarningPolicy['signals'] | undefined {
  const coded = [...Object.entries(info.parameters), ...Object.entries(info.eventCodes)]
    .filter(([name]) => /signal|colou?r|level/i.test(name))
    .flatMap(([, values]) => values);
  for (const t of [...coded, info.event, info.headline ?? '']) {
    const m = t.match(COLOUR_RE);
    if (m) return COLOURS[m[1].toLowerCase()] ?? COLOURS[m[1]];
  }
  return undefined;
}

function concernsCity(info: CapInfo, p: WarningPolicy): boolean {
  if (info.areas.length === 0) return true; // CAP 1.2 3.2.2: no area means the sender's whole area.
  return info.areas.some((a) =>
    Object.values(a.geocodes).flat().some((g) => p.areas.geocodes.some((prefix) => g.startsWith(prefix)))
    || p.areas.names.some((n) => a.areaDesc.toLowerCase().includes(n.toLowerCase())));
}

/** Decides what a validated alert means for emergency mode. */
export function decide(alert: CapAlert, p: WarningPolicy): Decision {
  if (alert.status === 'Test' && !p.acceptTest) return { action: 'ignore', reason: 'status Test (not accepted by the policy)' };
  if (alert.status === 'Exercise' && !p.acceptExercise) return { action: 'ignore', reason: 'status Exercise (not accepted by the policy)' };
  if (alert.status === 'System' || alert.status === 'Draft') return { action: 'ignore', reason: `status ${alert.status}` };
  if (alert.msgType === 'Ack' || alert.msgType === 'Error') return { action: 'ignore', reason: `msgType ${alert.msgType}` };
  if (alert.msgType === 'Cancel') return { action: 'cancel', references: alert.references.map((r) => r.identifier) };

  let best: { level: Level; signal?: string; info: CapInfo } | undefined;
  for (const info of alert.info) {
    if (!p.events.some((e) => info.event.toLowerCase().includes(e.toLowerCase()))) continue;
    if (!concernsCity(info, p)) continue;
    const signal = signalOf(info);
    const level = signal ? p.signals[signal] : p.severities[info.severity];
    if (!level) continue;
    if (!best || levelRank(level) > levelRank(best.level)) best = { level, signal, info };
  }
  if (!best) {
    // An Update that no longer reaches an emergency level (e.g. orange downgraded to white) lifts what it updates.
    if (alert.msgType === 'Update') return { action: 'cancel', references: alert.references.map((r) => r.identifier) };
    return { action: 'ignore', reason: 'no info block names a configured event at an emergency level for this city' };
  }
  return { action: 'enter', level: best.level, signal: best.signal, event: best.info.event, headline: best.info.headline, expires: lastExpiry(alert.info) };
}

/**
 * An alert is in force until its last info block expires (CAP 1.2 section 3.2.2 `expires`, per
 * info block), not the deciding block's: undefined when a block has no `expires` (never expires).
 */
export function lastExpiry(info: CapInfo[]): string | undefined {
  let last: { at: number; iso: string } | undefined;
  for (const i of info) {
    if (!i.expires) return undefined;
    const at = Date.parse(i.expires);
    if (!last || at > last.at) last = { at, iso: i.expires };
  }
  return last?.iso;
}
