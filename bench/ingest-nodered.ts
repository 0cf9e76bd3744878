/**
 * Node-RED 4.1 as an ingest peer (bench/ingest-bench.ts), embedded in a process of its own: an `mqtt in`
 * node (QoS 1, JSON) on Mosquitto feeding a function node that applies the manhole cover's thresholds
 * (devices/profiles/manhole-cover.yaml) and counts. Node-RED is installed by the bench under
 * ~/.cache/citysteward/node-red-4.1 (ingest-setup.ts installNodeRed). Parent protocol (IPC):
 *   <- { type: 'start', url, dir, userDir }   -> { type: 'ready' }
 *   <- { type: 'count' }                       -> { type: 'count', n }
 */
import { writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { SERVICE, account } from './identities.ts';

const THRESHOLDS = `const v = msg.payload.values; const c = global.get('counter'); c.n++;
if (v.tilt_deg > 10 || v.cover_open === true || v.water_depth_m > 0.5 || v.gas_ch4_ppm > 5000 || v.gas_h2s_ppm > 10 || v.battery_pct < 20) { c.breaches++; return msg; }
return null;`;

const counter = { n: 0, breaches: 0 };

async function start(url: string, dir: string, userDir: string): Promise<void> {
  const u = new URL(url);
  const { username, password } = account(SERVICE);
  writeFileSync(join(userDir, 'flows.json'), JSON.stringify([
    { id: 'tab', type: 'tab', label: 'ingest' },
    { id: 'broker', type: 'mqtt-broker', name: 'mosquitto', broker: u.hostname, port: u.port, clientid: `${SERVICE}-nodered`, autoConnect: true, usetls: false, protocolVersion: '4', keepalive: '60', cleansession: true },
    { id: 'in', type: 'mqtt in', z: 'tab', name: 'readings', topic: 'cs/v1/+/up/+', qos: '1', datatype: 'json', broker: 'broker', nl: false, rap: true, rh: 0, inputs: 0, wires: [['fn']] },
    { id: 'fn', type: 'function', z: 'tab', name: 'thresholds', func: THRESHOLDS, outputs: 1, wires: [[]] },
  ]));
  writeFileSync(join(userDir, 'flows_cred.json'), JSON.stringify({ broker: { user: username, password } }));
  const require = createRequire(join(dir, 'package.json'));
  const RED = require('node-red');
  RED.init(createServer(), {
    userDir, flowFile: 'flows.json', credentialSecret: false, httpAdminRoot: false, httpNodeRoot: false, uiPort: 0,
    functionGlobalContext: { counter },
    logging: { console: { level: 'warn', metrics: false, audit: false } },
    diagnostics: { enabled: false }, telemetry: { enabled: false }, externalModules: { palette: { allowInstall: false } },
  });
  await RED.start();
  process.send!({ type: 'ready' });
}

process.on('message', (m: { type: string; url: string; dir: string; userDir: string }) => {
  if (m.type === 'start') start(m.url, m.dir, m.userDir).catch((err: Error) => process.send!({ type: 'error', message: err.message }));
  else if (m.type === 'count') process.send!({ type: 'count', n: counter.n });
  else if (m.type === 'stop') process.exit(0);
});
process.on('disconnect', () => process.exit(0));
