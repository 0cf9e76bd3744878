/**
 * The demo's single-process mode for the ingest bench (bench/ingest-bench.ts): our broker and our cloud in
 * one process, each reading stored before its PUBACK (gateway/handoff.ts storeBeforePuback), SQLite.
 * argv: data directory (credentials.json, district.yaml). Parent protocol (IPC):
 *   -> { type: 'ready', url }     <- { type: 'stop' }
 */
import { join } from 'node:path';
import pino from 'pino';
import { buildCloud, type Cloud } from '../cloud/app.ts';
import { loadDistrict } from '../devices/district.ts';
import { loadProfiles } from '../devices/profile.ts';
import { CredentialStore } from '../gateway/credentials.ts';
import { buildGateway } from '../gateway/gateway.ts';
import { storeBeforePuback } from '../gateway/handoff.ts';
import { SERVICE, account } from './identities.ts';

const dir = process.argv[2]!;
const logger = pino({ level: 'warn' });
const profiles = loadProfiles();
const district = loadDistrict(join(dir, 'district.yaml'), profiles);
let cloud: Cloud | undefined;
const gateway = buildGateway({
  host: '127.0.0.1', port: 0, credentials: CredentialStore.open(join(dir, 'credentials.json')), watchCredentials: false,
  logger, onPublishAuthorized: storeBeforePuback(() => cloud?.ingest),
});
const { port } = await gateway.start();
const url = `mqtt://127.0.0.1:${port}`;
cloud = await buildCloud({
  source: { kind: 'in-process' }, db: { kind: 'sqlite', file: join(dir, 'citysteward.db') }, district, profiles,
  mqtt: { url, ...account(SERVICE) }, logger,
});
await cloud.start();
process.send!({ type: 'ready', url });
process.on('message', async (m: { type: string }) => {
  if (m.type !== 'stop') return;
  await cloud!.stop();
  await gateway.stop();
  process.exit(0);
});
process.on('disconnect', () => process.exit(0));
