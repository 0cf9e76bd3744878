import { resolve } from 'node:path';
import { ConfigError, loadConfig } from '../../lib/config.ts';
import { CloudErrors } from '../errors.ts';
import { KINDS, type CheckContext, type ConfigDocs, type ConfigKind } from './kinds.ts';

/**
 * A kind's document from its own file (YAML or JSON), named by the cloud's config file
 * (`routing`, `calendar`, README "Configuration as data"): checked whole as a change through the
 * API is; a problem stops the start naming the file, the key and the problem.
 */
export function loadConfigFile<K extends ConfigKind>(kind: K, file: string, ctx: CheckContext): ConfigDocs[K] {
  const doc = loadConfig(file, KINDS[kind].schema);
  const problems = KINDS[kind].cross(doc, ctx);
  if (problems.length) throw new ConfigError(CloudErrors.CONFIG_INVALID, resolve(file), problems);
  return doc as ConfigDocs[K];
}
