/**
 * A storm of bad logins must not starve good ones (issue 10, finding 4): each password check
 * costs a scrypt run, and 500 bad CONNECTs at once used to hold a real gateway's first login
 * back for 11 s. Timings are compared with a baseline measured in the same test, never absolute.
 */
import { createConnection } from 'node:net';
import { MqttClient } from 'mqtt';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { CredentialStore } from '../../gateway/credentials.ts';
import { buildGateway, type Gateway } from '../../gateway/gateway.ts';
import { loginGuard } from '../../gateway/login-guard.ts';
import { connectMqtt } from './helpers.ts';

const PASS = 'good-password-0001';
let store: CredentialStore;
let gateway: Gateway;
const clients: MqttClient[] = [];

beforeEach(async () => {
  store = CredentialStore.memory();
  for (const name of ['gw-good-1', 'gw-good-2', 'gw-good-3', 'gw-base-1', 'gw-base-2', 'gw-base-3', 'gw-victim-1', 'gw-victim-2']) store.create(name, 'gateway', PASS);
  gateway = buildGateway({ credentials: store });
  await gateway.start();
});

afterEach(async () => {
  for (const c of clients.splice(0)) await c.endAsync(true).catch(() => undefined);
  await gateway.stop();
});

/** A first login (no cached verification) from another loopback address than the storm's; resolves its time to CONNACK. */
function timedLogin(username: string, localAddress = '127.0.0.2'): Promise<number> {
  const t0 = performance.now();
  const client = new MqttClient(() => createConnection({ host: '127.0.0.1', port: gateway.port, localAddress }), {
    protocolVersion: 4, reconnectPeriod: 0, connectTimeout: 60_000, username, password: PASS, clientId: `${username}-${Math.random()}`,
  });
  clients.push(client);
  return new Promise((resolve, reject) => {
    client.once('connect', () => resolve(performance.now() - t0));
    client.once('error', reject);
  });
}

/** `size` real mqtt.js clients from 127.0.0.1 logging in with bad credentials again and again until stopped. */
function storm(size: number): { stop(): Promise<void>; attempts(): number } {
  let running = true;
  let attempts = 0;
  const loops = Array.from({ length: size }, async (_, i) => {
    // Half unknown usernames, half wrong passwords of real ones.
    const username = i % 2 ? `gw-nobody-${i}` : `gw-victim-${1 + (i % 4 === 0 ? 0 : 1)}`;
    while (running) {
      attempts++;
      try {
        const c = await connectMqtt(`mqtt://127.0.0.1:${gateway.port}`, { username, password: `wrong-password-${i}`, connectTimeout: 60_000 });
        await c.endAsync(true);
        throw new Error('a bad credential was accepted');
      } catch (err) {
        if ((err as Error).message === 'a bad credential was accepted') throw err;
      }
      await new Promise((r) => setTimeout(r, 20));
    }
  });
  return {
    attempts: () => attempts,
    async stop() {
      running = false;
      await Promise.all(loops);
    },
  };
}

describe('logins under a storm of bad ones', () => {
  it('a good gateway logs in during a storm of bad CONNECTs within 10 times the unloaded login time (median of three each)', async () => {
    const unloaded: number[] = [];
    for (const name of ['gw-base-1', 'gw-base-2', 'gw-base-3']) unloaded.push(await timedLogin(name));
    const baseline = unloaded.sort((a, b) => a - b)[1];

    const bad = storm(150);
    try {
      // Under way: every client of the pool has been refused at least once.
      while (gateway.stats().authFailures < 150) await new Promise((r) => setTimeout(r, 20));
      const attemptsBefore = bad.attempts();
      const times: number[] = [];
      // gw-victim-1 and gw-victim-2 are the storm's own targets: they still get in from their address.
      for (const name of ['gw-good-1', 'gw-victim-1', 'gw-victim-2']) times.push(await timedLogin(name));
      const loaded = times.sort((a, b) => a - b)[1];
      // The storm was still going while the good logins ran.
      expect(bad.attempts()).toBeGreaterThan(attemptsBefore);
      expect(loaded, `unloaded ${unloaded.map((x) => x.toFixed(0)).join('/')} ms, under the storm ${times.map((x) => x.toFixed(0)).join('/')} ms`).toBeLessThan(10 * baseline);
    } finally {
      await bad.stop();
    }
    expect(bad.attempts()).toBeGreaterThan(150);
  }, 60_000);
});

describe('login guard (pure, injected clock)', () => {
  function deferred(): { promise: Promise<boolean>; resolve: (v: boolean) => void } {
    let resolve!: (v: boolean) => void;
    return { promise: new Promise<boolean>((r) => (resolve = r)), resolve };
  }

  it('locks a username from the failing address after its free failures, doubling the lock per failure, and forgets after a success', () => {
    let t = 0;
    const g = loginGuard({ now: () => t, freeFailuresPerUsername: 2, freeFailuresPerAddress: 100, backoffMs: 1000 });
    g.failed('gw1', '10.0.0.1');
    g.failed('gw1', '10.0.0.1');
    expect(g.throttled('gw1', '10.0.0.1')).toBeUndefined();
    g.failed('gw1', '10.0.0.1');
    expect(g.throttled('gw1', '10.0.0.1')).toEqual({ kind: 'throttled', key: 'username', retryInMs: 1000 });
    g.failed('gw1', '10.0.0.1');
    expect(g.throttled('gw1', '10.0.0.1')).toMatchObject({ retryInMs: 2000 });
    t += 2001;
    expect(g.throttled('gw1', '10.0.0.1')).toBeUndefined();
    expect(g.throttled('gw2', '10.0.0.1')).toBeUndefined();
    g.succeeded('gw1', '10.0.0.1');
    g.failed('gw1', '10.0.0.1');
    expect(g.throttled('gw1', '10.0.0.1')).toBeUndefined();
  });

  it('a storm of bad passwords for a gateway id never locks that gateway out from its own address (fault: the username was locked for every address)', () => {
    const g = loginGuard({ now: () => 0, freeFailuresPerUsername: 2, freeFailuresPerAddress: 100, backoffMs: 1000 });
    for (let i = 0; i < 50; i++) g.failed('gw-victim', '10.0.0.66');
    expect(g.throttled('gw-victim', '10.0.0.66')).toMatchObject({ kind: 'throttled', key: 'username' });
    expect(g.throttled('gw-victim', '10.20.30.40')).toBeUndefined();
  });

  it('serves a clean attempt before the suspect ones queued ahead of it, and refuses locked ones at the head without running them', async () => {
    let t = 0;
    const g = loginGuard({ now: () => t, maxConcurrentChecks: 1, freeFailuresPerUsername: 1, freeFailuresPerAddress: 100 });
    const order: string[] = [];
    const first = deferred();
    const running = g.check('gw-victim', '10.0.0.1', () => { order.push('victim-0'); return first.promise; });
    const queued = [1, 2, 3].map((i) => g.check('gw-victim', '10.0.0.1', async () => { order.push(`victim-${i}`); return false; }).catch((e: Error) => e.message));
    const good = g.check('gw-good', '10.0.0.2', async () => { order.push('good'); return true; });
    g.failed('gw-victim', '10.0.0.1'); // the storm's first failures mark it
    g.failed('gw-victim', '10.0.0.1'); // and lock it
    first.resolve(false);
    await running;
    expect(await good).toBe(true);
    expect(await Promise.all(queued)).toEqual(Array(3).fill(expect.stringContaining('too many failed logins for this username')));
    expect(order).toEqual(['victim-0', 'good']);
  });

  it('when the queue is full, a clean attempt takes the place of a suspect one; a suspect one is refused as busy', async () => {
    const g = loginGuard({ now: () => 0, maxConcurrentChecks: 1, maxQueuedChecks: 2, freeFailuresPerUsername: 100, freeFailuresPerAddress: 100 });
    const hold = deferred();
    void g.check('gw-a', '10.0.0.1', () => hold.promise);
    g.failed('gw-a', '10.0.0.1');
    const suspects = [1, 2].map(() => g.check('gw-a', '10.0.0.1', async () => false).then(() => 'ran', (e: Error) => e.message));
    const third = await g.check('gw-a', '10.0.0.1', async () => false).then(() => 'ran', (e: Error) => e.message);
    expect(third).toContain('too many logins waiting');
    const good = g.check('gw-good', '10.0.0.2', async () => true);
    hold.resolve(false);
    expect(await good).toBe(true);
    expect(await Promise.all(suspects)).toEqual(['ran', expect.stringContaining('too many logins waiting')]);
  });
});
