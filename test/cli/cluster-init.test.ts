import { execFileSync } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { loadConfig } from '../../lib/config.ts';
import { CloudServiceConfig, GatewayServiceConfig } from '../../cli/config.ts';
import { loadEdgeConfig } from '../../edge/config.ts';
import { openCredentialStore } from '../../gateway/credentials.ts';
import { runCliOnce } from '../helpers/process.ts';

/**
 * The compose deployment's init step (`citysteward cluster init`, cli/cluster-init.ts) writes a config for
 * every service of docker-compose.yml with provisioned credentials (no CHANGE-ME), and keeps its secrets.
 */

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const dir = mkdtempSync(join(tmpdir(), 'cs-cluster-init-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const hasCompose = (() => {
  try {
    execFileSync('docker-compose', ['version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
})();

describe('citysteward cluster init (the compose init step)', () => {
  it('provisions every credential and writes configs the services accept, the same again on a second run', async () => {
    const out = join(dir, 'config');
    const creds = join(dir, 'gateway-data');
    const args = ['cluster', 'init', '--out', out, '--credentials-dir', creds, '--district', join(ROOT, 'deploy', 'district.yaml')];
    const first = await runCliOnce(args);
    expect(first.code, first.output).toBe(0);
    const secrets = JSON.parse(readFileSync(join(out, 'secrets.json'), 'utf8')) as { mqtt: Record<string, string>; pg: string; gatewayAdmin: string };
    expect(statSync(join(out, 'secrets.json')).mode & 0o077).toBe(0);
    expect(Object.keys(secrets.mqtt).sort()).toEqual(['cloud', 'gw-xz-gongbei', 'gw-xz-jida', 'observer']);
    const store = openCredentialStore(creds);
    for (const [user, password] of Object.entries(secrets.mqtt)) expect(await store.verify(user, password), user).toBeTruthy();

    const gateway = loadConfig(join(out, 'gateway.yaml'), GatewayServiceConfig);
    expect(gateway.redis?.url).toBe('redis://redis:6379/0');
    expect(gateway.stream?.partitions).toBe(16);
    for (const n of [1, 2]) {
      const cloud = loadConfig(join(out, `cloud-${n}.yaml`), CloudServiceConfig);
      expect(cloud.database).toMatchObject({ kind: 'postgres', url: `postgresql://citysteward:${encodeURIComponent(secrets.pg)}@postgres:5432/citysteward` });
      expect(cloud.stream).toMatchObject({ consumer: `cloud-${n}`, partitions: 16, key: 'cs:readings' });
      expect(cloud.mqtt.password).toBe(secrets.mqtt.cloud);
      expect([cloud.mqtt.url, ...(cloud.mqtt.urls ?? [])].sort()).toEqual(['mqtt://gateway-1:1883', 'mqtt://gateway-2:1883']);
      // Gateways created through the API are provisioned through the brokers' admin API (README "Provisioning gateways").
      expect(cloud.provisioning).toEqual({
        brokerAdmin: { urls: ['http://gateway-1:9883', 'http://gateway-2:9883'], token: secrets.gatewayAdmin },
        edge: { mqtt: { url: 'mqtt://gateway-1:1883', urls: ['mqtt://gateway-2:1883'] }, pollMs: 1000 },
      });
    }
    expect(gateway.http).toMatchObject({ host: '0.0.0.0', port: 9883 });
    expect(readFileSync(join(out, 'gateway_admin_token'), 'utf8')).toBe(secrets.gatewayAdmin);
    expect(statSync(join(out, 'gateway_admin_token')).mode & 0o077).toBe(0);
    const { loadProfiles } = await import('../../devices/profile.ts');
    const profiles = loadProfiles();
    const gongbei = loadEdgeConfig(join(out, 'edge-gw-xz-gongbei.yaml'), profiles);
    const jida = loadEdgeConfig(join(out, 'edge-gw-xz-jida.yaml'), profiles);
    expect(gongbei.mqtt).toMatchObject({ url: 'mqtt://gateway-1:1883', urls: ['mqtt://gateway-2:1883'], password: secrets.mqtt['gw-xz-gongbei'] });
    expect(jida.mqtt).toMatchObject({ url: 'mqtt://gateway-2:1883', urls: ['mqtt://gateway-1:1883'] });
    expect(gongbei.devices.length + jida.devices.length).toBe(30);
    expect(readFileSync(join(out, 'pg_password'), 'utf8')).toBe(secrets.pg);
    for (const f of ['gateway.yaml', 'cloud-1.yaml', 'cloud-2.yaml', 'edge-gw-xz-gongbei.yaml', 'edge-gw-xz-jida.yaml']) {
      expect(readFileSync(join(out, f), 'utf8')).not.toMatch(/CHANGE-ME/);
    }

    // Regression: a config left readable by all from an older run kept its mode when rewritten.
    chmodSync(join(out, 'cloud-1.yaml'), 0o644);
    chmodSync(join(out, 'gateway_admin_token'), 0o644);
    const again = await runCliOnce(args);
    expect(again.code, again.output).toBe(0);
    expect(JSON.parse(readFileSync(join(out, 'secrets.json'), 'utf8'))).toEqual(secrets);
    for (const f of ['gateway.yaml', 'cloud-1.yaml', 'cloud-2.yaml', 'edge-gw-xz-gongbei.yaml', 'gateway_admin_token']) {
      expect(statSync(join(out, f)).mode & 0o077, f).toBe(0);
    }
  }, 60_000);

  it('docker-compose.yml starts that topology from the init step', () => {
    const compose = parse(readFileSync(join(ROOT, 'docker-compose.yml'), 'utf8')) as { services: Record<string, { command?: string[]; depends_on?: Record<string, { condition: string }> }> };
    const s = compose.services;
    expect(Object.keys(s).sort()).toEqual(['cloud-1', 'cloud-2', 'edge-gongbei', 'edge-jida', 'gateway-1', 'gateway-2', 'init', 'postgres', 'redis', 'sim']);
    expect(s.init!.command!.slice(0, 2)).toEqual(['cluster', 'init']);
    for (const name of ['postgres', 'gateway-1', 'cloud-1', 'edge-gongbei', 'edge-jida']) {
      expect(s[name]!.depends_on?.init?.condition, name).toBe('service_completed_successfully');
    }
    expect(readFileSync(join(ROOT, 'docker-compose.yml'), 'utf8')).not.toMatch(/CHANGE-ME/);
  });

  it.skipIf(!hasCompose)('passes docker-compose config', () => {
    execFileSync('docker-compose', ['-f', join(ROOT, 'docker-compose.yml'), 'config', '-q'], { cwd: ROOT, stdio: 'pipe' });
  });
});
