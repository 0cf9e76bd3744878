/**
 * `citysteward flows`: Node-RED 4.1 embedded next to the cloud, with the CitySteward nodes
 * (flows/node-red-contrib-citysteward) preloaded. The editor asks for a cloud admin's sign-in;
 * an integrator API token and a read-only MQTT identity are provisioned at each start (the
 * previous ones revoked or rotated) and handed to the nodes in memory through the settings.
 */
import { randomBytes } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { CsError } from '../lib/errors.ts';
import { openDatabase, type DbOptions } from '../cloud/db/database.ts';
import { createTokenStore } from '../cloud/tokens.ts';
import { createUserStore } from '../cloud/users.ts';
import { openCredentialStore } from '../gateway/credentials.ts';

const require = createRequire(import.meta.url);
export const NODE_PACKAGE_DIR = fileURLToPath(new URL('../flows/node-red-contrib-citysteward', import.meta.url));

export interface FlowsOptions {
  db: DbOptions;
  /** Node-RED's user directory (flows, their encrypted credentials, the provisioning record). */
  userDir: string;
  /** Where the broker keeps credentials.json (the gateway's data directory). */
  gatewayDataDir: string;
  cloudUrl: string;
  brokerUrl: string;
  host: string;
  port: number;
  mqttUsername: string;
}

export interface RunningFlows {
  url: string;
  stop(): Promise<void>;
}

interface Provisioned { tokenId?: string }

interface NodeRed {
  init(server: Server, settings: Record<string, unknown>): void;
  start(): Promise<void>;
  stop(): Promise<void>;
  httpAdmin: (req: unknown, res: unknown, next: () => void) => void;
  httpNode: (req: unknown, res: unknown, next: () => void) => void;
}

/** One secret per user directory for Node-RED's credential encryption, made once (mode 0600). */
function credentialSecret(userDir: string): string {
  const file = join(userDir, 'credential-secret');
  if (!existsSync(file)) writeFileSync(file, randomBytes(32).toString('base64url') + '\n', { mode: 0o600 });
  return readFileSync(file, 'utf8').trim();
}

export async function startFlows(o: FlowsOptions): Promise<RunningFlows> {
  mkdirSync(o.userDir, { recursive: true, mode: 0o700 });
  const database = openDatabase(o.db);
  await database.migrate();
  const users = createUserStore(database, Date.now);

  // The API token: a new integrator token each start, the previous one revoked.
  const recordFile = join(o.userDir, 'citysteward-provisioned.json');
  const record: Provisioned = existsSync(recordFile) ? JSON.parse(readFileSync(recordFile, 'utf8')) as Provisioned : {};
  const tokens = createTokenStore(database, Date.now);
  if (record.tokenId) await tokens.revoke(record.tokenId);
  const { id: tokenId, token } = await tokens.create('integrator');
  writeFileSync(recordFile, JSON.stringify({ tokenId, mqttUsername: o.mqttUsername }, null, 2) + '\n', { mode: 0o600 });
  chmodSync(recordFile, 0o600);

  // The read-only MQTT identity: created once, a new password each start (the broker reloads the file).
  const creds = openCredentialStore(o.gatewayDataDir);
  const existing = creds.list().find((c) => c.username === o.mqttUsername);
  if (existing && (existing.role !== 'integrator' || existing.revokedAt)) {
    const why = existing.revokedAt ? 'was revoked' : `has role ${existing.role}`;
    throw new CsError('CS_CLI_USAGE', `MQTT user "${o.mqttUsername}" ${why}; flows needs a live integrator identity (choose another with --mqtt-username)`);
  }
  const mqttPassword = existing ? creds.rotate(o.mqttUsername).password : creds.create(o.mqttUsername, 'integrator').password;

  const admin = async (username: string) => {
    const u = await users.get(username);
    return u && u.role === 'admin' && u.disabledAt === null ? { username, permissions: '*' } : null;
  };
  const settings = {
    userDir: o.userDir,
    flowFile: 'flows.json',
    credentialSecret: credentialSecret(o.userDir),
    httpAdminRoot: '/',
    httpNodeRoot: '/',
    uiHost: o.host,
    uiPort: o.port,
    // The editor: a cloud admin's username and password, nothing else (no default user, no anonymous access).
    adminAuth: {
      type: 'credentials',
      users: admin,
      authenticate: async (username: string, password: string) => {
        const u = await users.authenticate(String(username), String(password));
        return u && u.role === 'admin' ? { username: u.username, permissions: '*' } : null;
      },
    },
    nodesDir: [NODE_PACKAGE_DIR],
    diagnostics: { enabled: false, ui: false },
    telemetry: { enabled: false, updateNotification: false },
    externalModules: { autoInstall: false, palette: { allowInstall: false, allowUpload: false }, modules: { allowInstall: false } },
    functionExternalModules: false,
    editorTheme: { projects: { enabled: false }, tours: false, page: { title: 'CitySteward flows' }, header: { title: 'CitySteward flows' } },
    logging: { console: { level: 'info', metrics: false, audit: false } },
    // What the citysteward-server node falls back to (flows/node-red-contrib-citysteward/server.js).
    citysteward: { url: o.cloudUrl, broker: o.brokerUrl, token, mqttUsername: o.mqttUsername, mqttPassword },
  };

  const RED = require('node-red') as NodeRed;
  const server = createServer((req, res) => RED.httpAdmin(req, res, () => RED.httpNode(req, res, () => {
    res.statusCode = 404;
    res.end();
  })));
  RED.init(server, settings);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(o.port, o.host, () => resolve());
  });
  await RED.start();
  const addr = server.address();
  const port = typeof addr === 'object' && addr ? addr.port : o.port;
  return {
    url: `http://${o.host.includes(':') ? `[${o.host}]` : o.host}:${port}/`,
    async stop() {
      await RED.stop();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await tokens.revoke(tokenId).catch(() => false);
      await database.close();
    },
  };
}
