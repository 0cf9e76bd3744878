import { CsError } from '../../lib/errors.ts';
import type { Logger } from '../../lib/log.ts';
import type { CredentialStore } from '../../gateway/credentials.ts';
import { GatewayErrors } from '../../gateway/errors.ts';
import { CloudErrors } from '../errors.ts';

/**
 * A gateway's broker credential (role `gateway`, username = gateway id), made when the gateway is
 * created through the API and revoked when it is retired (docs/architecture.md#provisioning). Two ways:
 *
 * - `brokerAdminCredentials`: the brokers' admin API (gateway/admin.ts, bearer admin token), for brokers
 *   that are processes of their own (`citysteward gateway`, the cluster, compose). Brokers sharing a
 *   credentials file are all asked through one of them: each admin URL is tried in turn until one answers.
 * - `storeCredentials`: the credential store of a broker in the same process (the demo).
 *
 * A username that exists and is live gets a new password (the old one stops working: a gateway created
 * again must not run on a password someone else may hold); a revoked one, or one of another role (`cloud`),
 * is refused: ids are not reused.
 */
export interface GatewayCredentials {
  create(gateway: string): Promise<{ username: string; password: string }>;
  /** Revokes; live connections of the gateway are closed. An unknown or already revoked username is fine. */
  revoke(gateway: string): Promise<void>;
}

export interface BrokerAdminOptions {
  /** Admin base URLs, e.g. http://127.0.0.1:9883 (one per broker; the first that answers is used). */
  urls: string[];
  /** The brokers' CS_GATEWAY_ADMIN_TOKEN. */
  token: string;
  /** Per request; default 5000 ms. */
  timeoutMs?: number;
  logger: Logger;
}

export function brokerAdminCredentials(o: BrokerAdminOptions): GatewayCredentials {
  if (!o.urls.length) throw new CsError(CloudErrors.CONFIG_INVALID, 'provisioning.brokerAdmin.urls: at least one admin URL');
  const timeoutMs = o.timeoutMs ?? 5000;

  /** The first broker that answers (any HTTP status); network failures and 5xx move on to the next. */
  async function call(method: string, path: string, body?: object): Promise<{ status: number; json: Record<string, unknown> }> {
    const problems: string[] = [];
    for (const base of o.urls) {
      try {
        const res = await fetch(`${base.replace(/\/$/, '')}${path}`, {
          method,
          headers: { authorization: `Bearer ${o.token}`, ...(body ? { 'content-type': 'application/json' } : {}) },
          ...(body ? { body: JSON.stringify(body) } : {}),
          signal: AbortSignal.timeout(timeoutMs),
        });
        const json = await res.json().catch(() => ({})) as Record<string, unknown>;
        if (res.status < 500) return { status: res.status, json };
        problems.push(`${base}: ${res.status} ${String(json.message ?? '')}`.trim());
      } catch (err) {
        problems.push(`${base}: ${(err as Error).message}`);
      }
      o.logger.warn({ url: base, method, path }, 'broker admin API did not answer; trying the next broker');
    }
    throw new CsError(CloudErrors.PROVISION_FAILED, `no broker admin API answered ${method} ${path} (${problems.join('; ')})`);
  }

  const refused = (what: string, r: { status: number; json: Record<string, unknown> }) =>
    new CsError(CloudErrors.PROVISION_FAILED, `the broker refused to ${what}: ${r.status} ${String(r.json.code ?? '')} ${String(r.json.message ?? '')}`.trim());

  return {
    async create(gateway) {
      const r = await call('POST', '/admin/credentials', { username: gateway, role: 'gateway' });
      if (r.status === 201) return { username: gateway, password: String(r.json.password) };
      if (r.status === 409 && r.json.code === GatewayErrors.USER_EXISTS) {
        const list = await call('GET', '/admin/credentials');
        const mine = Array.isArray(list.json) ? (list.json as { username: string; role: string }[]).find((i) => i.username === gateway) : undefined;
        if (mine?.role !== 'gateway') throw idUsed(gateway, 'is a broker identity of another role');
        const rot = await call('POST', `/admin/credentials/${encodeURIComponent(gateway)}/rotate`);
        if (rot.status === 200) return { username: gateway, password: String(rot.json.password) };
        if (rot.json.code === GatewayErrors.USER_REVOKED) throw idUsed(gateway);
        throw refused(`rotate the credential of ${gateway}`, rot);
      }
      throw refused(`create a credential for ${gateway}`, r);
    },
    async revoke(gateway) {
      const r = await call('DELETE', `/admin/credentials/${encodeURIComponent(gateway)}`);
      if (r.status === 200 || r.status === 404) return;
      throw refused(`revoke the credential of ${gateway}`, r);
    },
  };
}

/** The credential store of the broker running in this process (the demo). */
export function storeCredentials(store: CredentialStore): GatewayCredentials {
  return {
    async create(gateway) {
      const existing = store.get(gateway);
      if (existing?.revokedAt) throw idUsed(gateway);
      if (existing && existing.role !== 'gateway') throw idUsed(gateway, 'is a broker identity of another role');
      if (existing) return { username: gateway, password: store.rotate(gateway).password };
      return { username: gateway, password: store.create(gateway, 'gateway').password };
    },
    async revoke(gateway) {
      if (store.get(gateway)) store.revoke(gateway);
    },
  };
}

function idUsed(gateway: string, why = 'was used before and its broker credential revoked'): CsError {
  return new CsError(CloudErrors.PROVISION_ID_USED, `gateway id ${gateway} ${why}: choose another id`, { gateway });
}
