import { describe, expect, it } from 'vitest';
import { loginGuard } from '../../lib/login-guard.ts';

/** The per-account lock the cloud's sign-in turns on (lib/login-guard.ts; the broker's cases: test/gateway/logins.test.ts). */
describe('login guard: failures of one account from anywhere', () => {
  it('locks the account for every address after freeFailuresPerAccount failures spread over many addresses', () => {
    let t = 0;
    const g = loginGuard({ now: () => t, freeFailuresPerUsername: 5, freeFailuresPerAddress: 100, freeFailuresPerAccount: 10, backoffMs: 1000 });
    for (let i = 0; i < 10; i++) g.failed('alice', `10.0.0.${i}`);
    expect(g.throttled('alice', '192.168.1.1')).toBeUndefined();
    g.failed('alice', '10.0.0.99');
    expect(g.throttled('alice', '192.168.1.1')).toEqual({ kind: 'throttled', key: 'account', retryInMs: 1000 });
    expect(g.throttled('bob', '192.168.1.1')).toBeUndefined();
    t += 1000;
    expect(g.throttled('alice', '192.168.1.1')).toBeUndefined();
  });

  it('is off unless asked for: the broker never locks a gateway id for everyone', () => {
    const g = loginGuard({ now: () => 0, freeFailuresPerUsername: 2, freeFailuresPerAddress: 1000 });
    for (let i = 0; i < 200; i++) g.failed('gw-1', `10.0.${i >> 8}.${i & 255}`);
    expect(g.throttled('gw-1', '172.16.0.1')).toBeUndefined();
  });
});
