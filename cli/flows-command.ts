import { resolve } from 'node:path';
import { InvalidArgumentError, type Command } from 'commander';
import { loadConfig } from '../lib/config.ts';
import { CloudServiceConfig } from './config.ts';
import type { UserCommandHelpers } from './user-commands.ts';
import { runUntilSignal } from './wait.ts';

/** `citysteward flows`: Node-RED with the CitySteward nodes next to the cloud (cli/run-flows.ts). */
export function registerFlowsCommand(program: Command, h: UserCommandHelpers): void {
  program.command('flows')
    .description('run Node-RED 4.1 with the CitySteward nodes next to the cloud: editor behind a cloud admin\'s sign-in, an integrator API token and a read-only MQTT identity provisioned for the flows')
    .addOption(h.configOption(true))
    .addOption(h.dataDirOption())
    .option('--host <host>', 'address of the editor and the flows\' HTTP endpoints', '127.0.0.1')
    .option('--port <port>', 'port of the editor (default 1880; 0 = any free port)', portOf, 1880)
    .option('--cloud-url <url>', 'the cloud\'s base URL for the nodes (default: from the config\'s http host and port)')
    .option('--broker <url>', 'the MQTT broker for the nodes (default: the config\'s mqtt.url)')
    .option('--gateway-data-dir <dir>', 'the broker\'s data directory, where its credentials.json is (default: --data-dir)')
    .option('--mqtt-username <name>', 'the read-only MQTT identity provisioned for the flows', 'nodered')
    .action(async (o) => {
      const cfg = loadConfig(o.config, CloudServiceConfig);
      const host = cfg.http.host === '0.0.0.0' || cfg.http.host === '::' ? '127.0.0.1' : cfg.http.host;
      const { startFlows } = await import('./run-flows.ts');
      const flows = await startFlows({
        db: h.databaseOf(o.config, o.dataDir),
        userDir: resolve(o.dataDir, 'node-red'),
        gatewayDataDir: resolve(o.gatewayDataDir ?? o.dataDir),
        cloudUrl: o.cloudUrl ?? `http://${host.includes(':') ? `[${host}]` : host}:${cfg.http.port}`,
        brokerUrl: o.broker ?? cfg.mqtt.url,
        host: o.host,
        port: o.port,
        mqttUsername: o.mqttUsername,
      });
      console.log(`flows: Node-RED editor on ${flows.url} (sign in as a cloud admin)`);
      await runUntilSignal(() => flows.stop());
      // Node-RED leaves timers behind after its stop (an editor session's expiry, days ahead): end here.
      process.exit(process.exitCode ?? 0);
    });
}

function portOf(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0 || n > 65535) throw new InvalidArgumentError('a port is an integer 0..65535 (0 = any free port)');
  return n;
}
