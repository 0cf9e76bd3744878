import { createHash } from 'node:crypto';
import { CompiledQuery } from 'kysely';
import pg from 'pg';

/** Texts that run as named prepared statements on PostgreSQL, and their names (from the text's hash). */
const preparedNames = new Map<string, string>();

/**
 * A query of fixed text for the hot paths (docs/architecture.md#ingest), to run with `trx.executeQuery`
 * inside `write`. On PostgreSQL it is a named prepared statement (pg's `name`): parsed, and planned once
 * generic, per connection, instead of on every call. Parameters may be arrays (`unnest($1::text[])`).
 */
export function prepared<R>(text: string, parameters: readonly unknown[]): CompiledQuery<R> {
  if (!preparedNames.has(text)) preparedNames.set(text, `cs_${createHash('sha256').update(text).digest('hex').slice(0, 24)}`);
  return CompiledQuery.raw(text, parameters as unknown[]) as CompiledQuery<R>;
}

/**
 * A PostgreSQL array literal (`{...}`) of one column's values, for `$n::type[]`: numbers as they are,
 * strings in double quotes with `"` and backslash escaped, null as NULL. pg would quote every element,
 * numbers too, with two regular expressions each. A column of plain strings is JSON.stringify's array,
 * whose quoting is the literal's when no string holds a control character or a surrogate.
 */
export function arrayLiteral(values: readonly unknown[]): string {
  if (values.every((v) => typeof v === 'number')) return `{${values.join(',')}}`;
  if (values.every((v) => typeof v === 'string' && !JSON_UNSAFE.test(v))) return `{${JSON.stringify(values).slice(1, -1)}}`;
  const out: string[] = new Array(values.length);
  for (let i = 0; i < values.length; i++) {
    const v = values[i];
    if (v === null || v === undefined) out[i] = 'NULL';
    else if (typeof v === 'number') out[i] = String(v);
    else out[i] = `"${String(v).replace(ESCAPE, '\\$&')}"`;
  }
  return `{${out.join(',')}}`;
}
const ESCAPE = /["\\]/g;
/** What JSON.stringify writes as an escape the array literal would read otherwise. */
const JSON_UNSAFE = /[\u0000-\u001f\ud800-\udfff]/;

/** One array literal per column, for `unnest`. */
export function columnArrays<T, K extends keyof T>(rows: readonly T[], keys: readonly K[]): string[] {
  return keys.map((k) => arrayLiteral(rows.map((r) => r[k])));
}

/** pg's client, but a text `prepared` registered goes as a named statement (Kysely passes text and values). */
export class PreparingClient extends pg.Client {
  override query(...args: any[]): any {
    const name = typeof args[0] === 'string' ? preparedNames.get(args[0]) : undefined;
    return name ? super.query({ name, text: args[0], values: args[1] }, args[2]) : (super.query as (...a: any[]) => any)(...args);
  }
}
