import { describe, expect, it } from 'vitest';
import { canPublish, canReceive, canSubscribe, checkPublish, checkSubscribe, covers, rulesFor } from '../../gateway/acl.ts';
import type { Identity } from '../../gateway/credentials.ts';

const gw1: Identity = { username: 'gw1', role: 'gateway', gateway: 'gw1', createdAt: '2026-09-14T00:00:00.000Z' };
const cloud: Identity = { username: 'cloud', role: 'service', createdAt: '2026-09-14T00:00:00.000Z' };
const revokedGw: Identity = { ...gw1, revokedAt: '2026-09-15T00:00:00.000Z' };
const revokedCloud: Identity = { ...cloud, revokedAt: '2026-09-15T00:00:00.000Z' };

type Row = [who: string, identity: Identity | undefined, topic: string, allowed: boolean];

const publishTable: Row[] = [
  ['gateway', gw1, 'cs/v1/gw1/state', true],
  ['gateway', gw1, 'cs/v1/gw1/up/lvl-01', true],
  ['gateway', gw1, 'cs/v1/gw1/alarm/lvl-01', true],
  ['gateway', gw1, 'cs/v1/gw1/health', true],
  ['gateway', gw1, 'cs/v1/gw1/cmd/ack', true],
  ['gateway', gw1, 'cs/v1/gw1/cmd', false], // commands go down only
  ['gateway', gw1, 'cs/v1/gw2/up/lvl-01', false], // another gateway's namespace
  ['gateway', gw1, 'cs/v1/gw2/state', false],
  ['gateway', gw1, 'cs/v1/gw1/up', false],
  ['gateway', gw1, 'cs/v1/gw1/up/lvl-01/extra', false],
  ['gateway', gw1, 'cs/v1/gw1/up/', false], // empty device id
  ['gateway', gw1, 'cs/v1/gw1/other', false],
  ['gateway', gw1, 'cs/v1/gw1', false],
  ['gateway', gw1, 'cs/v1/events/case-opened', false],
  ['gateway', gw1, 'cs/v1/gw1/up/+', false], // wildcard in a topic name
  ['gateway', gw1, '$SYS/broker/x', false],
  ['gateway', gw1, 'gw1/up/x', false],
  ['gateway', gw1, '', false],
  ['revoked gateway', revokedGw, 'cs/v1/gw1/up/lvl-01', false],
  ['service', cloud, 'cs/v1/gw1/cmd', true],
  ['service', cloud, 'cs/v1/gw2/cmd', true],
  ['service', cloud, 'cs/v1/events/case-opened', true],
  ['service', cloud, 'cs/v1/events/case/opened', true],
  ['service', cloud, 'cs/v1//cmd', false], // + stands for one id
  ['service', cloud, 'cs/v1/gw1/up/lvl-01', false], // the cloud never forges readings
  ['service', cloud, 'cs/v1/gw1/state', false],
  ['service', cloud, 'cs/v1/gw1/cmd/ack', false],
  ['service', cloud, '$SYS/broker/x', false],
  ['service', cloud, 'other/topic', false],
  ['revoked service', revokedCloud, 'cs/v1/gw1/cmd', false],
  ['nobody', undefined, 'cs/v1/gw1/up/lvl-01', false],
];

const subscribeTable: Row[] = [
  ['gateway', gw1, 'cs/v1/gw1/cmd', true],
  ['gateway', gw1, 'cs/v1/gw2/cmd', false],
  ['gateway', gw1, 'cs/v1/+/cmd', false],
  ['gateway', gw1, 'cs/v1/gw1/#', false],
  ['gateway', gw1, 'cs/v1/gw1/+', false],
  ['gateway', gw1, 'cs/v1/#', false],
  ['gateway', gw1, '#', false],
  ['gateway', gw1, '+/v1/gw1/cmd', false],
  ['gateway', gw1, '$SYS/#', false],
  ['gateway', gw1, 'cs/v1/gw1/cmd/ack', false],
  ['revoked gateway', revokedGw, 'cs/v1/gw1/cmd', false],
  ['service', cloud, 'cs/v1/#', true],
  ['service', cloud, 'cs/v1/+/up/+', true],
  ['service', cloud, 'cs/v1/+/state', true],
  ['service', cloud, 'cs/v1/gw1/cmd/ack', true],
  ['service', cloud, 'cs/v1/events/#', true],
  ['service', cloud, '#', false],
  ['service', cloud, '+/v1/#', false],
  ['service', cloud, 'cs/+/#', false],
  ['service', cloud, '$SYS/#', false],
  ['service', cloud, 'cs/v1/#/x', false], // malformed filter
  ['service', cloud, 'cs/v1/gw+/up', false], // malformed filter
  ['revoked service', revokedCloud, 'cs/v1/#', false],
  ['nobody', undefined, 'cs/v1/gw1/cmd', false],
];

describe('ACL', () => {
  it.each(publishTable)('a %s publishing to %j: allowed %s', (_who, identity, topic, allowed) => {
    expect(canPublish(identity, topic)).toBe(allowed);
    const d = checkPublish(identity, topic);
    expect(d.allowed).toBe(allowed);
    expect(d.reason.length).toBeGreaterThan(0);
  });

  it.each(subscribeTable)('a %s subscribing to %j: allowed %s', (_who, identity, filter, allowed) => {
    expect(canSubscribe(identity, filter)).toBe(allowed);
    expect(checkSubscribe(identity, filter).allowed).toBe(allowed);
  });

  it('gives a refusal a reason naming the identity and the topic', () => {
    expect(checkPublish(gw1, 'cs/v1/gw2/up/x').reason).toBe('gateway gw1 may not publish to cs/v1/gw2/up/x');
    expect(checkSubscribe(gw1, '$SYS/#').reason).toMatch(/reserved/);
    expect(checkPublish(revokedGw, 'cs/v1/gw1/state').reason).toBe('credential revoked');
  });

  it('delivers to a gateway only its own commands', () => {
    expect(canReceive(gw1, 'cs/v1/gw1/cmd')).toBe(true);
    expect(canReceive(gw1, 'cs/v1/gw2/cmd')).toBe(false);
    expect(canReceive(gw1, 'cs/v1/gw2/up/x')).toBe(false);
    expect(canReceive(cloud, 'cs/v1/gw2/up/x')).toBe(true);
    expect(canReceive(cloud, '$SYS/broker/heartbeat')).toBe(false);
  });

  it('lets an observer (the demo\'s read-only identity) subscribe to the whole tree and publish nothing', () => {
    const observer = { username: 'observer', role: 'observer' as const, createdAt: '2026-01-01T00:00:00Z' };
    expect(canSubscribe(observer, 'cs/v1/#')).toBe(true);
    expect(canReceive(observer, 'cs/v1/gw1/up/x')).toBe(true);
    expect(canSubscribe(observer, '$SYS/#')).toBe(false);
    for (const t of ['cs/v1/gw1/up/x', 'cs/v1/gw1/cmd', 'cs/v1/events/case/opened', 'cs/v1/gw1/state']) expect(canPublish(observer, t)).toBe(false);
  });

  it('lets an integrator (Node-RED) subscribe to the cloud\'s events and the readings only, and publish nothing', () => {
    const integrator = { username: 'nodered', role: 'integrator' as const, createdAt: '2026-01-01T00:00:00Z' };
    for (const f of ['cs/v1/events/#', 'cs/v1/events/case/+', 'cs/v1/events/alarm/raised', 'cs/v1/+/up/+', 'cs/v1/gw1/up/XZ-WL-001']) {
      expect(canSubscribe(integrator, f), f).toBe(true);
    }
    for (const f of ['cs/v1/#', 'cs/v1/+/cmd', 'cs/v1/gw1/cmd/ack', 'cs/v1/+/state', 'cs/v1/+/health', 'cs/v1/+/alarm/+', '#', '$SYS/#']) {
      expect(canSubscribe(integrator, f), f).toBe(false);
    }
    expect(canReceive(integrator, 'cs/v1/events/case/transition')).toBe(true);
    expect(canReceive(integrator, 'cs/v1/gw1/up/x')).toBe(true);
    expect(canReceive(integrator, 'cs/v1/gw1/cmd')).toBe(false);
    for (const t of ['cs/v1/gw1/up/x', 'cs/v1/gw1/cmd', 'cs/v1/events/case/opened', 'cs/v1/gw1/state', 'cs/v1/gw1/cmd/ack']) expect(canPublish(integrator, t)).toBe(false);
  });

  it('gives a gateway identity without a valid gateway id no rules at all', () => {
    expect(rulesFor({ ...gw1, gateway: undefined })).toEqual({ publish: [], subscribe: [] });
    expect(rulesFor({ ...gw1, gateway: 'events' })).toEqual({ publish: [], subscribe: [] });
    expect(canPublish({ ...gw1, gateway: 'a/b' }, 'cs/v1/a/b/state')).toBe(false);
  });

  it('decides filter coverage by MQTT semantics', () => {
    expect(covers('cs/v1/#', 'cs/v1')).toBe(true); // # matches the parent level
    expect(covers('cs/v1/#', 'cs/v1/+/up/#')).toBe(true);
    expect(covers('cs/v1/+/cmd', 'cs/v1/+/cmd')).toBe(true);
    expect(covers('cs/v1/+/cmd', 'cs/v1/#')).toBe(false);
    expect(covers('cs/v1/gw1/cmd', 'cs/v1/+/cmd')).toBe(false);
    expect(covers('cs/v1/gw1/cmd', 'cs/v1/gw1/cmd/x')).toBe(false);
    expect(covers('cs/v1/gw1/up/+', 'cs/v1/gw1/up')).toBe(false);
  });
});
