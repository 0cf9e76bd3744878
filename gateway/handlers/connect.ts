/**
 * CONNECT: a pipeline of named steps run from Aedes' authenticate hook.
 *
 * - an empty client id asks for a session only with CleanSession 1 (MQTT-3.1.3-8; MQTT 3.1
 *   allows no empty id at all): otherwise CONNACK 2, identifier rejected, as Mosquitto answers;
 * - username and password required (CONNACK 4 when missing), checked against the
 *   credential store (CONNACK 5 for unknown, wrong or revoked: indistinguishable), through
 *   the login guard (login-guard.ts: bounded checks, slow-down after failures, CONNACK 3 when full);
 * - a verified client certificate's subject CN names the identity (mutual TLS);
 * - a Will outside the identity's publish ACL is refused (CONNACK 5);
 * - client ids are scoped to the username (`{username}:{client id}` inside the broker),
 *   so one identity can neither take over nor wipe another identity's session.
 * Every refusal is logged with username, client id and remote address, never the password.
 */
import type { AuthenticateError, Client, ConnectPacket, PublishPacket } from 'aedes';
import { CsError } from '../../lib/errors.ts';
import { checkPublish } from '../acl.ts';
import type { Identity } from '../credentials.ts';
import { GatewayErrors } from '../errors.ts';
import type { GatewayContext } from '../context.ts';
import type { TokenBucket } from '../limits.ts';
import { LoginRefused, loginGuard, type GuardRefusal } from '../login-guard.ts';
import { ANONYMOUS, CONNACK } from '../types.ts';
import { runSteps, type Step } from './steps.ts';

interface ConnectAttempt {
  client: Client;
  /** The broker's id of the client (Aedes invents one for an empty client id). */
  clientId: string;
  /** The CONNECT as sent: client id, CleanSession flag and protocol level. */
  asked: { clientId: string; clean: boolean; protocolVersion: number } | undefined;
  username: string | undefined;
  password: Buffer | undefined;
  remote: string;
  will: PublishPacket | undefined;
  /** Subject CN of a verified client certificate (mutual TLS). */
  certName: string | undefined;
  identity?: Identity;
}

export interface ConnectHandlers {
  preConnect(client: Client, packet: ConnectPacket, done: (err: Error | null, ok: boolean) => void): void;
  authenticate(
    client: Client,
    username: Readonly<string | undefined>,
    password: Readonly<Buffer | undefined>,
    done: (err: AuthenticateError | null, ok: boolean | null) => void,
  ): void;
  /** Records the subject CN of a TLS client's verified certificate (listeners.ts). */
  certNames: WeakMap<Client, string>;
  /** The publish rate bucket of a connected client, made at its first PUBLISH (publish.ts). */
  publishBuckets: WeakMap<Client, TokenBucket>;
}

export function connectHandlers(ctx: GatewayContext): ConnectHandlers {
  const { store, log, metrics, limits, opts } = ctx;
  const logins = loginGuard({ ...opts.logins, now: ctx.now });
  /** What authenticate needs of the CONNECT packet (it gets only username and password). */
  const packets = new WeakMap<Client, ConnectPacket>();
  const certNames = new WeakMap<Client, string>();
  const publishBuckets = new WeakMap<Client, TokenBucket>();

  const steps: Step<ConnectAttempt>[] = [requireClientId, requireCredentials, verifyCredential, checkWill, scopeClientId, bindIdentity];

  /** MQTT-3.1.3-8: a zero-byte client id with CleanSession 0 is refused with 0x02 (before any password check). */
  function requireClientId(a: ConnectAttempt): void {
    const asked = a.asked;
    if (!asked || asked.clientId.length > 0) return;
    if (!asked.clean || asked.protocolVersion === 3) {
      throw refusal(CONNACK.IDENTIFIER_REJECTED, GatewayErrors.CLIENT_ID_REJECTED,
        asked.protocolVersion === 3 ? 'MQTT 3.1 needs a client id' : 'an empty client id needs CleanSession 1 (MQTT-3.1.3-8)');
    }
  }

  function requireCredentials(a: ConnectAttempt): void {
    if (a.certName !== undefined) return; // the certificate names the identity
    if (!a.username && (a.password === undefined || a.password.length === 0) && opts.allowAnonymous) return;
    if (!a.username || a.password === undefined || a.password.length === 0) {
      throw refusal(CONNACK.BAD_USERNAME_OR_PASSWORD, GatewayErrors.AUTH_MISSING, 'username and password required');
    }
  }

  async function verifyCredential(a: ConnectAttempt): Promise<void> {
    // One stat: a credential another broker of the cluster revoked or rotated a moment ago is judged on the file as it
    // is now, not on this broker's copy until its watcher reloads (a recalled password would pass).
    store.refresh();
    if (a.certName !== undefined) {
      if (a.username && a.username !== a.certName) {
        throw refusal(CONNACK.NOT_AUTHORIZED, GatewayErrors.CERT_MISMATCH, 'username differs from the certificate subject', { certName: a.certName });
      }
      const identity = store.get(a.certName);
      if (!identity || identity.revokedAt) {
        throw refusal(CONNACK.NOT_AUTHORIZED, GatewayErrors.AUTH_FAILED, 'certificate subject is not a live credential', { certName: a.certName });
      }
      a.identity = identity;
      return;
    }
    if (!a.username && opts.allowAnonymous) {
      a.identity = ANONYMOUS;
      return;
    }
    await checkPassword(a, a.username!, a.password!);
  }

  /**
   * A password: a credential verified before passes at once (it is right, so no storm can hold
   * it back); a locked username or address is refused at once; an unknown username is refused
   * without scrypt, as slowly as a wrong password (after a look whether the shared credentials file
   * changed: CredentialStore.refresh); the rest queue for the bounded lane (login-guard.ts).
   */
  async function checkPassword(a: ConnectAttempt, username: string, password: Buffer): Promise<void> {
    const address = hostOf(a.remote);
    const recalled = store.recall(username, password);
    if (recalled) {
      a.identity = recalled;
      return;
    }
    const lock = logins.throttled(username, address);
    if (lock) throw guardRefusal(lock);
    // Another broker of the cluster may have just created or rotated it on the shared file: verifyCredential's stat told.
    if (!store.get(username)) {
      logins.failed(undefined, address);
      await delay(logins.typicalCheckMs());
      throw wrongCredential();
    }
    try {
      a.identity = await logins.check(username, address, async () =>
        (await store.verify(username, password)) ?? (store.refresh() ? store.verify(username, password) : undefined));
    } catch (err) {
      if (err instanceof LoginRefused) throw guardRefusal(err.refusal);
      throw err;
    }
    if (!a.identity) {
      logins.failed(username, address);
      throw wrongCredential();
    }
    logins.succeeded(username, address);
  }

  function delay(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        ctx.timers.delete(timer);
        resolve();
      }, ms);
      ctx.timers.add(timer);
    });
  }

  function checkWill(a: ConnectAttempt): void {
    if (!a.will) return;
    const d = checkPublish(a.identity, a.will.topic);
    if (!d.allowed) {
      ctx.deny('will');
      throw refusal(CONNACK.NOT_AUTHORIZED, GatewayErrors.WILL_DENIED, `will refused: ${d.reason}`, { willTopic: a.will.topic });
    }
  }

  /** Sessions live per identity: `{username}:{client id}` (a username never holds `:`). */
  function scopeClientId(a: ConnectAttempt): void {
    (a.client as { id: string }).id = `${a.identity!.username}:${a.clientId}`;
  }

  function bindIdentity(a: ConnectAttempt): void {
    if (a.identity !== ANONYMOUS && store.get(a.identity!.username)?.revokedAt) {
      throw refusal(CONNACK.NOT_AUTHORIZED, GatewayErrors.AUTH_FAILED, 'credential revoked during authentication');
    }
    ctx.identities.set(a.client, a.identity!);
    // Gone while the password was checked: Aedes drops the attempt; keep it out of the live set.
    if (a.client.closed || a.client.conn.destroyed) return;
    ctx.live.add(a.client);
    metrics?.connections.inc();
    metrics?.connectionsTotal.inc();
    // One shared listener, not a closure over the attempt: that kept its password copy and
    // CONNECT fields for the connection's life (docs/architecture.md#broker-memory).
    a.client.conn.on('close', leftLive);
    // The publish bucket is made at the first PUBLISH (publish.ts): an idle connection carries none.
  }

  /** A socket's 'close': Aedes sets `conn.client` (its lib/client.js). */
  function leftLive(this: { client?: Client }): void {
    if (this.client && ctx.live.delete(this.client)) metrics?.connections.dec();
  }

  function preConnect(client: Client, packet: ConnectPacket, done: (err: Error | null, ok: boolean) => void): void {
    packets.set(client, packet);
    done(null, true);
  }

  function authenticate(
    client: Client,
    username: Readonly<string | undefined>,
    password: Readonly<Buffer | undefined>,
    done: (err: AuthenticateError | null, ok: boolean | null) => void,
  ): void {
    const packet = packets.get(client);
    packets.delete(client);
    // mqtt-packet's parser keeps the CONNECT as its `settings` for the connection's life: the
    // secret need not stay in memory with it (docs/architecture.md#broker-memory).
    if (packet) packet.password = undefined;
    const attempt: ConnectAttempt = {
      client,
      clientId: client.id,
      asked: packet ? { clientId: packet.clientId ?? '', clean: packet.clean !== false, protocolVersion: packet.protocolVersion ?? 4 } : undefined,
      username: typeof username === 'string' ? username : undefined,
      password: password === undefined || password === null ? undefined : Buffer.from(password),
      remote: ctx.remotes.get(client) ?? 'unknown',
      will: packet?.will as PublishPacket | undefined,
      certName: certNames.get(client),
    };
    runSteps(steps, attempt, (err) => {
      if (!err) {
        log.info({ username: attempt.username, clientId: attempt.clientId, remote: attempt.remote, role: attempt.identity!.role }, 'mqtt client authenticated');
        done(null, true);
        return;
      }
      ctx.counters.authFailures++;
      metrics?.authFailures.inc({ code: err instanceof CsError ? err.code : 'internal' });
      if (!(err instanceof CsError)) {
        log.error({ err, username: attempt.username, remote: attempt.remote }, 'mqtt authentication failed unexpectedly');
        done(Object.assign(new Error('server unavailable'), { returnCode: CONNACK.SERVER_UNAVAILABLE }) as AuthenticateError, false);
        return;
      }
      const refused = err as CsError & AuthenticateError;
      // Keyed by address: a storm from one address under many usernames writes a few lines and a count.
      ctx.warn(hostOf(attempt.remote), {
        username: attempt.username ?? null, clientId: attempt.clientId, remote: attempt.remote,
        code: refused.code, returnCode: refused.returnCode, reason: refused.message, ...refused.details,
      }, 'mqtt connection refused');
      done(refused, false);
    });
  }

  return { preConnect, authenticate, certNames, publishBuckets };
}

function wrongCredential(): CsError & AuthenticateError {
  return refusal(CONNACK.NOT_AUTHORIZED, GatewayErrors.AUTH_FAILED, 'unknown username, wrong password or revoked credential');
}

function guardRefusal(r: GuardRefusal): CsError & AuthenticateError {
  if (r.kind === 'busy') {
    return refusal(CONNACK.SERVER_UNAVAILABLE, GatewayErrors.AUTH_BUSY, `too many logins waiting for a password check (${r.queued})`, { queued: r.queued });
  }
  return refusal(CONNACK.NOT_AUTHORIZED, GatewayErrors.AUTH_THROTTLED, `too many failed logins for this ${r.key}: retry in ${r.retryInMs} ms`,
    { throttledBy: r.key, retryInMs: r.retryInMs });
}

/** The address of `host:port` (IPv6 included), the key of per-address slow-downs. */
function hostOf(remote: string): string {
  const i = remote.lastIndexOf(':');
  return i > 0 ? remote.slice(0, i) : remote;
}

function refusal(returnCode: number, code: string, message: string, details?: Record<string, unknown>): CsError & AuthenticateError {
  return Object.assign(new CsError(code, message, details), { returnCode }) as CsError & AuthenticateError;
}
