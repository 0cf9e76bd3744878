/**
 * The topic scheme: one namespace per gateway, so that a gateway's ACL is one pattern
 * (`cs/v1/{gateway}/#`). Documented in README.md "Topics".
 */
export const TOPIC_ROOT = 'cs/v1';

/** Gateway and device ids: letters, digits, `-`, `_`, `.`; no MQTT wildcards or separators. */
export const ID_PATTERN = '^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$';
const ID_RE = new RegExp(ID_PATTERN);

export function isValidId(id: string): boolean {
  return ID_RE.test(id);
}

export const topics = {
  /** Retained birth/death certificate of a gateway. */
  state: (gw: string) => `${TOPIC_ROOT}/${gw}/state`,
  /** Readings of one device. */
  up: (gw: string, device: string) => `${TOPIC_ROOT}/${gw}/up/${device}`,
  /** Edge-local alarms of one device. */
  alarm: (gw: string, device: string) => `${TOPIC_ROOT}/${gw}/alarm/${device}`,
  /** Bus and slave counters, outbox depth. */
  health: (gw: string) => `${TOPIC_ROOT}/${gw}/health`,
  /** Commands to a gateway, and its acknowledgements. */
  cmd: (gw: string) => `${TOPIC_ROOT}/${gw}/cmd`,
  cmdAck: (gw: string) => `${TOPIC_ROOT}/${gw}/cmd/ack`,
  /** The namespace a gateway owns. */
  namespace: (gw: string) => `${TOPIC_ROOT}/${gw}/`,
  /** Subscriptions of the cloud. */
  allUp: `${TOPIC_ROOT}/+/up/+`,
  allState: `${TOPIC_ROOT}/+/state`,
  allAlarm: `${TOPIC_ROOT}/+/alarm/+`,
  allHealth: `${TOPIC_ROOT}/+/health`,
  allCmdAck: `${TOPIC_ROOT}/+/cmd/ack`,
  /** Cloud events for integrations (read-only to integrators). */
  events: (kind: string) => `${TOPIC_ROOT}/events/${kind}`,
} as const;

export type TopicKind = 'state' | 'up' | 'alarm' | 'health' | 'cmd' | 'cmd-ack';

export interface ParsedTopic {
  readonly gateway: string;
  readonly kind: TopicKind;
  readonly device?: string;
}

/**
 * Topics parsed lately (a reading's topic is parsed at each step of its path), their answers frozen and
 * shared; emptied when full, so a flood of distinct topics costs a parse each and no memory.
 */
const parsed = new Map<string, ParsedTopic>();
const PARSED_MAX = 10_000;

/** Parses a gateway topic; returns undefined for anything outside the scheme. */
export function parseTopic(topic: string): ParsedTopic | undefined {
  const hit = parsed.get(topic);
  if (hit) return hit;
  const t = parseFresh(topic);
  if (t) {
    if (parsed.size >= PARSED_MAX) parsed.clear();
    parsed.set(topic, Object.freeze(t));
  }
  return t;
}

function parseFresh(topic: string): ParsedTopic | undefined {
  const parts = topic.split('/');
  if (parts.length < 3 || parts[0] !== 'cs' || parts[1] !== 'v1') return undefined;
  const gateway = parts[2];
  if (!isValidId(gateway) || gateway === 'events') return undefined;
  const rest = parts.slice(3);
  if (rest.length === 1 && rest[0] === 'state') return { gateway, kind: 'state' };
  if (rest.length === 1 && rest[0] === 'health') return { gateway, kind: 'health' };
  if (rest.length === 1 && rest[0] === 'cmd') return { gateway, kind: 'cmd' };
  if (rest.length === 2 && rest[0] === 'cmd' && rest[1] === 'ack') return { gateway, kind: 'cmd-ack' };
  if (rest.length === 2 && (rest[0] === 'up' || rest[0] === 'alarm') && isValidId(rest[1])) {
    return { gateway, kind: rest[0], device: rest[1] };
  }
  return undefined;
}
