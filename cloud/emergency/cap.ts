import { XMLParser, XMLValidator } from 'fast-xml-parser';
import { CsError } from '../../lib/errors.ts';
import { EmergencyErrors } from './errors.ts';

/**
 * CAP 1.2 (OASIS Common Alerting Protocol, Version 1.2, 2010) warnings: parsed, validated and
 * reduced to what emergency mode needs. Element names and value lists follow CAP 1.2 section 3.2.
 */

export const CAP_NS = 'urn:oasis:names:tc:emergency:cap:1.2';
export const MAX_CAP_BYTES = 512 * 1024;
/** A CAP 1.2 document is at most 5 elements deep (alert/info/area/geocode/value); room for extensions. */
export const MAX_CAP_DEPTH = 16;
/** Longest element name accepted (CAP 1.2's longest is `responseType`, 12). */
export const MAX_CAP_NAME = 64;

const STATUS = ['Actual', 'Exercise', 'System', 'Test', 'Draft'] as const;
const MSG_TYPE = ['Alert', 'Update', 'Cancel', 'Ack', 'Error'] as const;
const SCOPE = ['Public', 'Restricted', 'Private'] as const;
const URGENCY = ['Immediate', 'Expected', 'Future', 'Past', 'Unknown'] as const;
const SEVERITY = ['Extreme', 'Severe', 'Moderate', 'Minor', 'Unknown'] as const;
const CERTAINTY = ['Observed', 'Likely', 'Possible', 'Unlikely', 'Unknown'] as const;

export type CapStatus = (typeof STATUS)[number];
export type CapMsgType = (typeof MSG_TYPE)[number];
export type CapSeverity = (typeof SEVERITY)[number];
export type CapUrgency = (typeof URGENCY)[number];

export interface CapReference { sender: string; identifier: string; sent: string }
export interface CapArea { areaDesc: string; geocodes: Record<string, string[]> }
export interface CapInfo {
  language: string;
  categories: string[];
  event: string;
  urgency: CapUrgency;
  severity: CapSeverity;
  certainty: string;
  headline?: string;
  description?: string;
  eventCodes: Record<string, string[]>;
  parameters: Record<string, string[]>;
  onset?: string;
  expires?: string;
  areas: CapArea[];
}
export interface CapAlert {
  identifier: string;
  sender: string;
  sent: string;
  status: CapStatus;
  msgType: CapMsgType;
  scope: string;
  references: CapReference[];
  info: CapInfo[];
}

export class CapError extends CsError {
  readonly statusCode: number;
  constructor(e: { code: string; status: number }, message: string) {
    super(e.code, message);
    this.statusCode = e.status;
  }
}

// Names that reach JavaScript object internals; no CAP element is called so.
const RESERVED_NAMES = new Set(['__proto__', 'constructor', 'prototype', ...Object.getOwnPropertyNames(Object.prototype)]);

/** Every element name passes here (the parser's transformTagName hook) before it becomes a key. */
function checkName(name: string): string {
  const local = name.split(':').pop()!;
  if (RESERVED_NAMES.has(local)) throw new CapError(EmergencyErrors.CAP_ELEMENT_NAME, `element <${name.slice(0, MAX_CAP_NAME)}> is not a CAP 1.2 element and is refused`);
  if (name.length > MAX_CAP_NAME) throw new CapError(EmergencyErrors.CAP_ELEMENT_NAME, `an element name is ${name.length} characters long (at most ${MAX_CAP_NAME})`);
  return name;
}

// The parser's own bounds: nesting depth (maxNestedTags) and element names (transformTagName).
const bounded = { maxNestedTags: MAX_CAP_DEPTH, transformTagName: checkName } as const;
const parser = new XMLParser({
  ignoreAttributes: false,
  removeNSPrefix: true,
  // No entity expansion: CAP needs none, and it closes the billion-laughs door.
  processEntities: false,
  parseTagValue: false,
  trimValues: true,
  isArray: (name) => ['info', 'area', 'parameter', 'eventCode', 'geocode', 'category', 'resource'].includes(name),
  ...bounded,
});
const nsParser = new XMLParser({ ignoreAttributes: false, removeNSPrefix: false, processEntities: false, parseTagValue: false, ...bounded });

/** Parses with the bounds above; whatever the parser throws is a 4xx naming the problem, never a 500. */
function parseBounded(p: XMLParser, s: string): Node {
  try {
    return p.parse(s) as Node;
  } catch (err) {
    if (err instanceof CapError) throw err;
    const message = (err as Error)?.message ?? String(err);
    if (/nested/i.test(message)) throw new CapError(EmergencyErrors.CAP_TOO_DEEP, `elements are nested deeper than ${MAX_CAP_DEPTH} levels (a CAP 1.2 document needs 5)`);
    throw new CapError(EmergencyErrors.CAP_INVALID, `not a CAP document: ${message}`);
  }
}

type Node = Record<string, unknown>;

function text(node: Node, key: string, where: string, required = true): string | undefined {
  const v = node[key];
  if (v === undefined || v === '') {
    if (required) throw new CapError(EmergencyErrors.CAP_INVALID, `${where}.${key} is required (CAP 1.2 section 3.2)`);
    return undefined;
  }
  if (typeof v !== 'string') throw new CapError(EmergencyErrors.CAP_INVALID, `${where}.${key} must be text`);
  return v;
}

function oneOf<T extends string>(node: Node, key: string, values: readonly T[], where: string): T {
  const v = text(node, key, where)!;
  if (!values.includes(v as T)) throw new CapError(EmergencyErrors.CAP_INVALID, `${where}.${key} is "${v}", expected one of ${values.join(', ')}`);
  return v as T;
}

// CAP 1.2 section 3.3.2: dateTime with an explicit offset, no fractional seconds required.
const CAP_DATE = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?([+-]\d\d:\d\d|Z)$/;
function dateTime(node: Node, key: string, where: string, required = true): string | undefined {
  const v = text(node, key, where, required);
  if (v === undefined) return undefined;
  if (!CAP_DATE.test(v) || Number.isNaN(Date.parse(v))) throw new CapError(EmergencyErrors.CAP_INVALID, `${where}.${key} "${v}" is not a CAP dateTime (e.g. 2026-09-14T06:00:00+08:00)`);
  return new Date(v).toISOString();
}

function pairs(list: unknown, where: string): Record<string, string[]> {
  const out: Record<string, string[]> = {};
  for (const item of (list as Node[] | undefined) ?? []) {
    const name = text(item, 'valueName', where)!;
    const value = text(item, 'value', where)!;
    (out[name] ??= []).push(value);
  }
  return out;
}

/** Parses a CAP 1.2 document; throws CapError (with an HTTP status) naming what is wrong. */
export function parseCap(xml: string | Buffer): CapAlert {
  const s = typeof xml === 'string' ? xml : xml.toString('utf8');
  if (Buffer.byteLength(s) > MAX_CAP_BYTES) throw new CapError(EmergencyErrors.CAP_TOO_LARGE, `CAP document is larger than ${MAX_CAP_BYTES} bytes`);
  if (/<!DOCTYPE/i.test(s)) throw new CapError(EmergencyErrors.CAP_DOCTYPE, 'CAP documents carry no DOCTYPE; refused');
  const valid = XMLValidator.validate(s);
  if (valid !== true) {
    throw new CapError(EmergencyErrors.CAP_NOT_XML, `not well-formed XML: ${valid.err.msg} (line ${valid.err.line}, column ${valid.err.col})`);
  }
  // The root must be <alert> in the CAP 1.2 namespace, default or prefixed (CAP 1.2 section 3.3.1).
  const raw = parseBounded(nsParser, s);
  const rootKey = Object.keys(raw).find((k) => k !== '?xml');
  const local = rootKey?.split(':').pop();
  if (!rootKey || local !== 'alert') throw new CapError(EmergencyErrors.CAP_NAMESPACE, `root element is <${rootKey ?? 'none'}>, not a CAP <alert>`);
  const prefix = rootKey.includes(':') ? rootKey.split(':')[0] : undefined;
  const ns = (raw[rootKey] as Node)[prefix ? `@_xmlns:${prefix}` : '@_xmlns'];
  if (ns !== CAP_NS) throw new CapError(EmergencyErrors.CAP_NAMESPACE, `alert namespace is ${ns ? `"${String(ns)}"` : 'missing'}, expected ${CAP_NS}`);

  const a = parseBounded(parser, s).alert as Node;
  const where = 'alert';
  const alert: CapAlert = {
    identifier: text(a, 'identifier', where)!,
    sender: text(a, 'sender', where)!,
    sent: dateTime(a, 'sent', where)!,
    status: oneOf(a, 'status', STATUS, where),
    msgType: oneOf(a, 'msgType', MSG_TYPE, where),
    scope: oneOf(a, 'scope', SCOPE, where),
    references: parseReferences(text(a, 'references', where, false)),
    info: ((a.info as Node[] | undefined) ?? []).map((info, i) => parseInfo(info, `alert.info[${i}]`)),
  };
  if ((alert.msgType === 'Update' || alert.msgType === 'Cancel') && alert.references.length === 0) {
    throw new CapError(EmergencyErrors.CAP_INVALID, `alert.references is required for msgType ${alert.msgType} (CAP 1.2 section 3.2.1)`);
  }
  return alert;
}

/**
 * Whether a parsed alert may still act (CAP 1.2 section 3.2.2 `expires`, 3.2.1 `sent`): refused
 * when every info block has expired (an Alert or Update with nothing left in force), or when it
 * was sent further in the future than `skewMs` (a wrong clock or a forged date).
 */
export function checkTimeliness(alert: CapAlert, now: number, skewMs: number): void {
  const sent = Date.parse(alert.sent);
  if (sent > now + skewMs) {
    throw new CapError(EmergencyErrors.CAP_SENT_IN_FUTURE, `alert.sent ${alert.sent} is ${Math.round((sent - now) / 1000)} s in the future (clock skew allowed: ${Math.round(skewMs / 1000)} s)`);
  }
  if (alert.msgType !== 'Alert' && alert.msgType !== 'Update') return;
  const expiries = alert.info.map((i) => (i.expires ? Date.parse(i.expires) : Infinity));
  if (expiries.length > 0 && expiries.every((e) => e <= now)) {
    throw new CapError(EmergencyErrors.CAP_EXPIRED, `every info block of alert ${alert.identifier} has expired (latest expires ${new Date(Math.max(...expiries)).toISOString()}); nothing is in force`);
  }
}

function parseReferences(v: string | undefined): CapReference[] {
  if (!v) return [];
  return v.split(/\s+/).filter(Boolean).map((triple) => {
    const [sender, identifier, sent] = triple.split(',');
    if (!sender || !identifier || !sent) throw new CapError(EmergencyErrors.CAP_INVALID, `alert.references entry "${triple}" is not sender,identifier,sent`);
    return { sender, identifier, sent };
  });
}

function parseInfo(info: Node, where: string): CapInfo {
  const categories = ((info.category as unknown[]) ?? []).map(String);
  if (categories.length === 0) throw new CapError(EmergencyErrors.CAP_INVALID, `${where}.category is required`);
  return {
    language: text(info, 'language', where, false) ?? 'en-US',
    categories,
    event: text(info, 'event', where)!,
    urgency: oneOf(info, 'urgency', URGENCY, where),
    severity: oneOf(info, 'severity', SEVERITY, where),
    certainty: oneOf(info, 'certainty', CERTAINTY, where),
    headline: text(info, 'headline', where, false),
    description: text(info, 'description', where, false),
    eventCodes: pairs(info.eventCode, `${where}.eventCode`),
    parameters: pairs(info.parameter, `${where}.parameter`),
    onset: dateTime(info, 'onset', where, false),
    expires: dateTime(info, 'expires', where, false),
    areas: ((info.area as Node[] | undefined) ?? []).map((area, j) => ({
      areaDesc: text(area, 'areaDesc', `${where}.area[${j}]`)!,
      geocodes: pairs(area.geocode, `${where}.area[${j}].geocode`),
    })),
  };
}
