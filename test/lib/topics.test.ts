import { describe, expect, it } from 'vitest';
import { parseTopic, topics } from '../../lib/topics.ts';

describe('topic scheme', () => {
  it('builds and parses every gateway topic', () => {
    expect(parseTopic(topics.up('gw-1', 'XZ-WL-001'))).toEqual({ gateway: 'gw-1', kind: 'up', device: 'XZ-WL-001' });
    expect(parseTopic(topics.alarm('gw-1', 'D1'))).toEqual({ gateway: 'gw-1', kind: 'alarm', device: 'D1' });
    expect(parseTopic(topics.state('gw-1'))).toEqual({ gateway: 'gw-1', kind: 'state' });
    expect(parseTopic(topics.health('gw-1'))).toEqual({ gateway: 'gw-1', kind: 'health' });
    expect(parseTopic(topics.cmd('gw-1'))).toEqual({ gateway: 'gw-1', kind: 'cmd' });
    expect(parseTopic(topics.cmdAck('gw-1'))).toEqual({ gateway: 'gw-1', kind: 'cmd-ack' });
  });

  it('refuses topics outside the scheme', () => {
    for (const t of ['cs/v2/gw/state', 'cs/v1/gw', 'cs/v1/gw/up', 'cs/v1/gw/up/a/b', 'cs/v1/events/state', 'cs/v1/+/up/x', 'cs/v1/gw/up/#', 'x/v1/gw/state']) {
      expect(parseTopic(t), t).toBeUndefined();
    }
  });
  it('answers a topic parsed before with the same frozen answer, and stays right past its memory of them', () => {
    const first = parseTopic('cs/v1/gw-1/up/dev-1');
    expect(parseTopic('cs/v1/gw-1/up/dev-1')).toBe(first);
    expect(Object.isFrozen(first)).toBe(true);
    for (let i = 0; i < 25_000; i++) expect(parseTopic(`cs/v1/gw-${i % 7}/up/d-${i}`)).toEqual({ gateway: `gw-${i % 7}`, kind: 'up', device: `d-${i}` });
    expect(parseTopic('cs/v1/gw-1/up/dev-1')).toEqual({ gateway: 'gw-1', kind: 'up', device: 'dev-1' });
    expect(parseTopic('cs/v1/gw-1/up/dev 1')).toBeUndefined();
  });
});
