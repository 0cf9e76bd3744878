import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../lib/config.ts';
import { CloudServiceConfig, GatewayServiceConfig } from '../../cli/config.ts';
import { loadEdgeConfig } from '../../edge/config.ts';
import { loadDistrict } from '../../devices/district.ts';
import { loadProfiles } from '../../devices/profile.ts';

const DEPLOY = fileURLToPath(new URL('../../deploy/', import.meta.url));

describe('the deployment configs shipped in deploy/', () => {
  it('all validate against their schemas and reference each other consistently', () => {
    const profiles = loadProfiles();
    const district = loadDistrict(join(DEPLOY, 'district.yaml'), profiles);
    const cloud = loadConfig(join(DEPLOY, 'cloud.yaml'), CloudServiceConfig);
    expect(cloud.district).toBe('district.yaml');
    expect(cloud.emergency?.fastPollMs).toBe(250);
    expect(cloud.mqtt.clientId).toBe('cs-cloud'); // a persistent session: the broker queues readings while the cloud restarts
    const gateway = loadConfig(join(DEPLOY, 'gateway.yaml'), GatewayServiceConfig);
    expect(gateway.mqtt.port).toBe(1883);
    const edge = loadEdgeConfig(join(DEPLOY, 'edge-gongbei.yaml'), profiles);
    const onGongbei = district.devices.filter((d) => d.bus.startsWith('bus-gongbei')).map((d) => d.id).sort();
    expect(edge.devices.map((d) => d.id).sort()).toEqual(onGongbei);
  });
});
