/**
 * Revoking a credential closes its live connections, also when the revocation is written
 * to the credentials file by another process (`citysteward credential revoke`): the
 * file's directory is watched and the store reloaded, which emits `revoked`.
 */
import { watch, type FSWatcher } from 'node:fs';
import { basename, dirname } from 'node:path';
import type { GatewayContext } from './context.ts';

export interface Revocation {
  start(): void;
  stop(): void;
}

export function revocation(ctx: GatewayContext): Revocation {
  const { store, log } = ctx;
  let watcher: FSWatcher | undefined;
  let reloadTimer: NodeJS.Timeout | undefined;

  function onRevoked(username: string): void {
    for (const client of ctx.live) {
      const identity = ctx.identities.get(client);
      if (identity?.username !== username) continue;
      // Deny at once whatever is already parsed, then close.
      ctx.identities.set(client, { ...identity, revokedAt: identity.revokedAt ?? new Date().toISOString() });
      log.warn({ username, clientId: client.id, remote: ctx.remotes.get(client) }, 'credential revoked: closing its connection');
      ctx.live.delete(client);
      client.close();
    }
  }

  function watchCredentialFile(): void {
    const file = store.file;
    if (!file || ctx.opts.watchCredentials === false) return;
    const name = basename(file);
    try {
      watcher = watch(dirname(file), { persistent: false }, (_event, changed) => {
        if (changed !== null && changed !== name) return;
        clearTimeout(reloadTimer);
        reloadTimer = setTimeout(reloadCredentials, 50);
      });
      watcher.on('error', (err) => log.error({ err, file }, 'credentials watcher failed; changes by other processes need a restart'));
    } catch (err) {
      log.warn({ err, file }, 'cannot watch the credentials file; changes by other processes need a restart');
    }
  }

  function reloadCredentials(): void {
    reloadTimer = undefined;
    try {
      store.reload();
    } catch (err) {
      log.error({ err }, 'credentials file changed but cannot be used; keeping the credentials in memory');
    }
  }

  return {
    start() {
      store.on('revoked', onRevoked);
      watchCredentialFile();
    },
    stop() {
      store.off('revoked', onRevoked);
      watcher?.close();
      watcher = undefined;
      clearTimeout(reloadTimer);
      reloadTimer = undefined;
    },
  };
}
