import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import type { Static, TSchema } from '@sinclair/typebox';
import { parseDocument } from 'yaml';
import { CsError, LibErrors } from './errors.ts';
import { check, type SchemaProblem } from './schema.ts';

/** A config file that cannot be used: names the file, the key and the problem. */
export class ConfigError extends CsError {
  readonly file: string;
  readonly problems: SchemaProblem[];

  constructor(code: string, file: string, problems: SchemaProblem[]) {
    const lines = problems.map((p) => `  ${p.key}: ${p.message}`).join('\n');
    super(code, `invalid config file ${file}:\n${lines}`, { file, problems });
    this.name = 'ConfigError';
    this.file = file;
    this.problems = problems;
  }
}

/** Parses YAML text (JSON is YAML too) and validates it against `schema`. */
export function parseConfig<T extends TSchema>(text: string, schema: T, file = '(inline)'): Static<T> {
  const doc = parseDocument(text, { prettyErrors: true, uniqueKeys: true });
  if (doc.errors.length) {
    const e = doc.errors[0];
    const where = e.linePos?.[0] ? `line ${e.linePos[0].line}, column ${e.linePos[0].col}` : '(root)';
    throw new ConfigError(LibErrors.CONFIG_YAML, file, [{ key: where, message: e.message.split('\n')[0] }]);
  }
  const result = check(schema, doc.toJS() ?? {});
  if (!result.ok) throw new ConfigError(LibErrors.CONFIG_INVALID, file, result.problems);
  return result.value;
}

/** Reads and validates a YAML config file. */
export function loadConfig<T extends TSchema>(file: string, schema: T): Static<T> {
  const path = resolve(file);
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new ConfigError(LibErrors.CONFIG_READ, path, [{ key: '(file)', message: (err as Error).message }]);
  }
  return parseConfig(text, schema, path);
}
