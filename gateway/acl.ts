/**
 * MQTT authorization as data. Each role has a short list of topic patterns it may
 * publish to and subscribe to; everything else is refused (deny by default).
 *
 * A pattern uses MQTT filter syntax with one tightening: a `+` in a pattern stands for
 * one id (ID_PATTERN) when a concrete topic is checked, so `cs/v1/+/cmd` does not admit
 * `cs/v1//cmd` or `cs/v1/a b/cmd`.
 *
 * Pure functions, no I/O: the broker (gateway.ts) calls them from its Aedes hooks.
 */
import { TOPIC_ROOT, isValidId, topics } from '../lib/topics.ts';
import type { Identity } from './credentials.ts';

export interface AclRules {
  /** Topic patterns the identity may publish to. */
  publish: readonly string[];
  /** Subscription filters the identity may use (a filter must be covered by one of them). */
  subscribe: readonly string[];
}

export interface AclDecision {
  allowed: boolean;
  /** Short words for a log line: why it was allowed or refused. */
  reason: string;
}

/** The rules of one identity; a revoked identity, or one without a valid gateway id, has none. */
export function rulesFor(identity: Identity): AclRules {
  if (identity.revokedAt) return { publish: [], subscribe: [] };
  if (identity.role === 'gateway') {
    const gw = identity.gateway;
    if (!gw || !isValidId(gw) || gw === 'events') return { publish: [], subscribe: [] };
    return {
      publish: [topics.state(gw), topics.up(gw, '+'), topics.alarm(gw, '+'), topics.health(gw), topics.cmdAck(gw)],
      subscribe: [topics.cmd(gw)],
    };
  }
  if (identity.role === 'service') {
    return {
      publish: [topics.cmd('+'), topics.events('#')],
      subscribe: [`${TOPIC_ROOT}/#`],
    };
  }
  if (identity.role === 'observer') {
    // Read-only: watch the traffic, publish nothing.
    return { publish: [], subscribe: [`${TOPIC_ROOT}/#`] };
  }
  if (identity.role === 'integrator') {
    // Read-only, narrower than observer: the cloud's events and the readings; no states, health or commands.
    return { publish: [], subscribe: [topics.events('#'), topics.allUp] };
  }
  if (identity.role === 'anonymous') {
    // Development switch only (allowAnonymous): the whole cs/v1 tree, still never $-topics.
    return { publish: [`${TOPIC_ROOT}/#`], subscribe: [`${TOPIC_ROOT}/#`] };
  }
  return { publish: [], subscribe: [] };
}

/** Whether a PUBLISH (or a Will) by `identity` to `topic` is allowed, and why. */
export function checkPublish(identity: Identity | undefined, topic: string): AclDecision {
  return decide(identity, topic, false, 'publish');
}

/** Whether a SUBSCRIBE by `identity` to `filter` is allowed, and why. */
export function checkSubscribe(identity: Identity | undefined, filter: string): AclDecision {
  return decide(identity, filter, true, 'subscribe');
}

/** checkPublish without the reason: the per-message fast path. */
export function canPublish(identity: Identity | undefined, topic: string): boolean {
  if (!identity || identity.revokedAt || topicShape(topic, false)) return false;
  return firstCovering(compiled(identity).publish, topic.split('/')) !== undefined;
}

export function canSubscribe(identity: Identity | undefined, filter: string): boolean {
  return checkSubscribe(identity, filter).allowed;
}

/**
 * Whether a message on `topic` may be delivered to `identity`: only when its topic is
 * one the identity may subscribe to, so a gateway never receives another gateway's
 * traffic even through a subscription granted earlier or a restored session.
 */
export function canReceive(identity: Identity | undefined, topic: string): boolean {
  if (!identity || identity.revokedAt || topicShape(topic, false)) return false;
  return firstCovering(compiled(identity).subscribe, topic.split('/')) !== undefined;
}

/**
 * Whether every topic matched by `filter` is matched by `pattern` (a topic without
 * wildcards is a filter matching itself). `+` in the pattern admits one id, or `+`
 * in the filter; `#` in the pattern admits the rest, including its parent level.
 */
export function covers(pattern: string, filter: string): boolean {
  return coversLevels(pattern.split('/'), filter.split('/'));
}

function coversLevels(p: readonly string[], f: readonly string[]): boolean {
  for (let i = 0; ; i++) {
    if (i === p.length) return i === f.length;
    if (p[i] === '#') return true;
    if (i === f.length) return false;
    if (f[i] === '#') return false;
    if (p[i] === '+') {
      if (f[i] !== '+' && !isValidId(f[i])) return false;
      continue;
    }
    if (f[i] === '+' || p[i] !== f[i]) return false;
  }
}

interface CompiledRule { pattern: string; levels: readonly string[] }
interface CompiledRules { publish: CompiledRule[]; subscribe: CompiledRule[] }

/** Rules split into levels once per identity object (the broker keeps one per connection). */
const compiledRules = new WeakMap<Identity, CompiledRules>();

function compiled(identity: Identity): CompiledRules {
  let c = compiledRules.get(identity);
  if (!c) {
    const rules = rulesFor(identity);
    const split = (list: readonly string[]) => list.map((pattern) => ({ pattern, levels: pattern.split('/') }));
    c = { publish: split(rules.publish), subscribe: split(rules.subscribe) };
    compiledRules.set(identity, c);
  }
  return c;
}

function firstCovering(rules: readonly CompiledRule[], levels: readonly string[]): string | undefined {
  for (const rule of rules) if (coversLevels(rule.levels, levels)) return rule.pattern;
  return undefined;
}

function decide(identity: Identity | undefined, topic: string, isFilter: boolean, verb: 'publish' | 'subscribe'): AclDecision {
  if (!identity) return deny('no identity');
  if (identity.revokedAt) return deny('credential revoked');
  const shape = topicShape(topic, isFilter);
  if (shape) return deny(shape);
  const rules = compiled(identity);
  const pattern = firstCovering(verb === 'publish' ? rules.publish : rules.subscribe, topic.split('/'));
  if (pattern !== undefined) return allow(`${identity.role} may ${verb} to ${pattern}`);
  return deny(`${identity.role} ${identity.username} may not ${verb} to ${topic}`);
}

const TOPIC_NAME_BAD = /[+#\u0000]/;

/** A reason to refuse a topic or filter whatever the rules, or undefined. */
function topicShape(topic: string, isFilter: boolean): string | undefined {
  if (typeof topic !== 'string' || topic.length === 0) return 'empty topic';
  if (topic.charCodeAt(0) === 36 /* $ */) return '$-topics are reserved';
  if (!isFilter) return TOPIC_NAME_BAD.test(topic) ? 'wildcard or NUL in a topic name' : undefined;
  if (topic.includes('\u0000')) return 'NUL in filter';
  const levels = topic.split('/');
  for (let i = 0; i < levels.length; i++) {
    const l = levels[i];
    if (l.includes('#') && (l !== '#' || i !== levels.length - 1)) return 'misplaced # in filter';
    if (l.includes('+') && l !== '+') return 'misplaced + in filter';
  }
  return undefined;
}

function allow(reason: string): AclDecision {
  return { allowed: true, reason };
}

function deny(reason: string): AclDecision {
  return { allowed: false, reason };
}
