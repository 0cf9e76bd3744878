import { createRequire } from 'node:module';
import type BetterSqlite3 from 'better-sqlite3';
import { CsError } from './errors.ts';

/**
 * The SQLite driver for this Node. better-sqlite3 12 (our Node 20 build) aborts the process on
 * Node 24.19+ when a Statement is garbage-collected: Node 24's node::ObjectWrap removes an
 * environment cleanup hook in its destructor (WiseLibs/better-sqlite3#1515). better-sqlite3 13
 * is built on Node-API and is safe there, but needs Node 22. So Node >= 22 loads 13 (installed as
 * the optional dependency `better-sqlite3-napi`, which npm skips on Node 20) and Node 20 loads 12.
 * Both have the same API.
 */
const require = createRequire(import.meta.url);
const major = Number(process.versions.node.split('.')[0]);

function load(): typeof BetterSqlite3 {
  if (major >= 22) {
    try {
      return require('better-sqlite3-napi') as typeof BetterSqlite3;
    } catch (err) {
      throw new CsError('CS_SQLITE_DRIVER', `Node ${process.versions.node} needs better-sqlite3 13 (optional dependency better-sqlite3-napi), which is not installed or not built: run npm install on this Node (${(err as Error).message})`);
    }
  }
  return require('better-sqlite3') as typeof BetterSqlite3;
}

export const Sqlite: typeof BetterSqlite3 = load();
export type SqliteDatabase = BetterSqlite3.Database;
export type SqliteStatement = BetterSqlite3.Statement;
