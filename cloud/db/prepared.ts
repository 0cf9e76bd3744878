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

/** One array per column, for `unnest` (pg sends a JS array as an array literal, quoting every element). */
export function columnArrays<T, K extends keyof T>(rows: readonly T[], keys: readonly K[]): unknown[][] {
  return keys.map((k) => rows.map((r) => r[k]));
}

/** pg's client, but a text `prepared` registered goes as a named statement (Kysely passes text and values). */
export class PreparingClient extends pg.Client {
  override query(...args: any[]): any {
    const name = typeof args[0] === 'string' ? preparedNames.get(args[0]) : undefined;
    return name ? super.query({ name, text: args[0], values: args[1] }, args[2]) : (super.query as (...a: any[]) => any)(...args);
  }
}
