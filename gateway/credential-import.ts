/**
 * `citysteward credential import FILE`: many credentials from a CSV or JSON file, all or nothing.
 *
 * - CSV: one credential a line, `id` or `id,secret`; an optional header line `id,secret`;
 *   blank lines and lines starting with `#` are skipped. No quoting: ids and secrets hold no commas.
 * - JSON: an array of `{ "id": "...", "secret"?: "..." }`; errors name the entry (1-based) as its line.
 * Absent secrets are generated (256 bits) and printed once by the CLI.
 */
import { CsError } from '../lib/errors.ts';
import { ID_PATTERN, isValidId } from '../lib/topics.ts';
import { CREDENTIAL_ROLES, MIN_PASSWORD_LENGTH, type Role } from './credentials.ts';
import { GatewayErrors } from './errors.ts';

/** One credential to add in bulk; `line` numbers it in errors. */
export interface ImportEntry { line: number; username: string; role: Role; password?: string }
export interface ImportProblem { line: number; problem: string }

/**
 * Parses the file's text (JSON when it starts with `[`, else CSV). Lines that cannot be read come
 * back as problems, to be reported with the store's own (importMany): every bad line at once.
 */
export function parseImport(text: string, role: Role): { entries: ImportEntry[]; problems: ImportProblem[] } {
  const problems: ImportProblem[] = [];
  const entries: ImportEntry[] = [];
  if (text.trimStart().startsWith('[')) {
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch (err) {
      throw importRefused([{ line: 0, problem: `not valid JSON: ${(err as Error).message}` }]);
    }
    if (!Array.isArray(json)) throw importRefused([{ line: 0, problem: 'JSON must be an array of { "id", "secret"? }' }]);
    json.forEach((item: unknown, i) => {
      const line = i + 1;
      const o = item as { id?: unknown; secret?: unknown };
      const extra = item && typeof item === 'object' ? Object.keys(item).filter((k) => k !== 'id' && k !== 'secret') : [];
      if (!item || typeof item !== 'object' || Array.isArray(item)) problems.push({ line, problem: 'not an object { "id", "secret"? }' });
      else if (typeof o.id !== 'string') problems.push({ line, problem: 'id missing or not a string' });
      else if (o.secret !== undefined && typeof o.secret !== 'string') problems.push({ line, problem: 'secret not a string' });
      else if (extra.length) problems.push({ line, problem: `unknown field(s) ${extra.join(', ')}` });
      else entries.push({ line, username: o.id, role, ...(o.secret !== undefined ? { password: o.secret } : {}) });
    });
  } else {
    text.split(/\r?\n/).forEach((raw, i) => {
      const line = i + 1;
      const l = raw.trim();
      if (!l || l.startsWith('#')) return;
      const fields = l.split(',').map((f) => f.trim());
      if (entries.length === 0 && problems.length === 0 && /^(id|username)$/i.test(fields[0])) return; // header
      if (fields.length > 2) problems.push({ line, problem: `${fields.length} fields: expected id or id,secret` });
      else entries.push({ line, username: fields[0], role, ...(fields[1] ? { password: fields[1] } : {}) });
    });
  }
  if (!entries.length && !problems.length) throw importRefused([{ line: 0, problem: 'no credentials in the file' }]);
  return { entries, problems };
}

/** Problems of a batch against the store (`exists`) and within itself; empty when all can be added. */
export function checkImport(entries: ImportEntry[], exists: (username: string) => boolean, reserved: ReadonlySet<string>): ImportProblem[] {
  const problems: ImportProblem[] = [];
  const seen = new Map<string, number>();
  for (const e of entries) {
    const bad = (problem: string): void => void problems.push({ line: e.line, problem });
    if (typeof e.username !== 'string' || !isValidId(e.username) || reserved.has(e.username)) {
      bad(`invalid id ${JSON.stringify(e.username)}: must match ${ID_PATTERN} and not be ${[...reserved].join(', ')}`);
    } else if (exists(e.username)) bad(`id ${e.username} already exists`);
    else if (seen.has(e.username)) bad(`id ${e.username} repeats line ${seen.get(e.username)}`);
    if (!(CREDENTIAL_ROLES as readonly string[]).includes(e.role)) bad(`invalid role ${JSON.stringify(e.role)}`);
    if (e.password !== undefined && (typeof e.password !== 'string' || e.password.length < MIN_PASSWORD_LENGTH)) {
      bad(`secret too short: at least ${MIN_PASSWORD_LENGTH} characters`);
    }
    if (typeof e.username === 'string' && !seen.has(e.username)) seen.set(e.username, e.line);
  }
  return problems;
}

export function importRefused(problems: ImportProblem[]): CsError {
  const shown = problems.slice(0, 20).map((p) => (p.line ? `line ${p.line}: ${p.problem}` : p.problem)).join('; ');
  return new CsError(GatewayErrors.IMPORT_INVALID,
    `nothing imported: ${problems.length} problem(s): ${shown}${problems.length > 20 ? `; and ${problems.length - 20} more` : ''}`,
    { problems });
}
