import { realpathSync } from 'node:fs';
import { Sqlite, type SqliteDatabase, type SqliteStatement } from '../../lib/sqlite.ts';
import { Kysely, PostgresDialect, SqliteDialect, sql, type LogEvent } from 'kysely';
import pg from 'pg';
import { CsError } from '../../lib/errors.ts';
import { silentLogger, type Logger } from '../../lib/log.ts';
import { CloudErrors } from '../errors.ts';
import { createMigrator } from './migrations.ts';
import { PreparingClient } from './prepared.ts';
import type { DB } from './schema.ts';

export type DbOptions = { kind: 'sqlite'; file: string } | { kind: 'postgres'; url: string };

/**
 * The cloud's database: Kysely over better-sqlite3 (WAL, busy_timeout) or a pg pool.
 *
 * Every write goes through `write(fn)`, one transaction. On SQLite it begins IMMEDIATE (the write
 * lock is taken up front, so two processes never deadlock upgrading a read lock) and is serialised
 * per database file within this process: better-sqlite3 is synchronous, so a second connection
 * in the same thread waiting on busy_timeout would block the very event loop the first one needs
 * to commit. Across processes, busy_timeout does the waiting. On PostgreSQL it is a plain
 * READ COMMITTED transaction; correctness under concurrency rests on constraints and
 * ON CONFLICT, not on the serialisation.
 */
export interface Database {
  readonly kind: 'sqlite' | 'postgres';
  /** For reads (and DDL through the migrator). Writes go through `write`. */
  readonly db: Kysely<DB>;
  write<T>(fn: (trx: Kysely<DB>) => Promise<T>): Promise<T>;
  /**
   * SQLite only: a better-sqlite3 statement prepared once per connection and kept, for the hot
   * paths (docs/architecture.md#ingest). Use it only inside `write` (same connection, same
   * transaction); Kysely's driver would prepare the same text again on every call.
   */
  statement?(text: string): SqliteStatement;
  /** Transactions committed and rolled back through `write` since open (tests count commits with it). */
  writes(): { commits: number; rollbacks: number };
  migrate(): Promise<void>;
  ping(): Promise<void>;
  close(): Promise<void>;
}

/** A promise chain per SQLite file: the in-process writer lock. */
const sqliteLocks = new Map<string, { tail: Promise<unknown>; users: number }>();

function lockFor(file: string): { tail: Promise<unknown>; users: number } {
  let l = sqliteLocks.get(file);
  if (!l) {
    l = { tail: Promise.resolve(), users: 0 };
    sqliteLocks.set(file, l);
  }
  return l;
}

function serialised<T>(file: string, fn: () => Promise<T>): Promise<T> {
  const l = lockFor(file);
  const run = l.tail.then(fn, fn);
  l.tail = run.catch(() => undefined);
  return run;
}

const SQLITE_BUSY = /SQLITE_BUSY|database is locked/;

/** Told the duration of each query made through Kysely (not the prepared statements of `statement`). */
export type QueryObserver = (ms: number, ok: boolean) => void;

export function openDatabase(opts: DbOptions, logger: Logger = silentLogger(), onQuery?: QueryObserver): Database {
  return opts.kind === 'sqlite' ? openSqlite(opts.file, onQuery) : openPostgres(opts.url, logger, onQuery);
}

/** Kysely's `log` option for an observer (Kysely times each query only when given one). */
function queryLog(onQuery?: QueryObserver) {
  return onQuery ? { log: (e: LogEvent) => onQuery(e.queryDurationMillis, e.level === 'query') } : {};
}

function openSqlite(file: string, onQuery?: QueryObserver): Database {
  // Nothing is opened here: the file is opened by the first query (the cloud's start() migrates),
  // so a factory that only builds never holds a file handle (docs/architecture.md#processes-and-deployments).
  let raw: SqliteDatabase | undefined;
  let key = file;
  const open = (): SqliteDatabase => {
    if (raw) return raw;
    try {
      const r = new Sqlite(file);
      r.pragma('journal_mode = WAL');
      r.pragma('busy_timeout = 5000');
      r.pragma('synchronous = NORMAL');
      // Checkpoint at ~40 MB of WAL (default 1,000 pages): a page every batch rewrites (rollups, device_state,
      // index interiors) is copied to the file once per checkpoint, not once per batch (docs/architecture.md#ingest).
      r.pragma('wal_autocheckpoint = 10000');
      r.pragma('foreign_keys = ON');
      raw = r;
    } catch (err) {
      throw new CsError(CloudErrors.DB_UNAVAILABLE, `cannot open SQLite database ${file}: ${(err as Error).message}`, { file });
    }
    key = realpathSync(file);
    lockFor(key).users++;
    return raw;
  };
  const db = new Kysely<DB>({ dialect: new SqliteDialect({ database: async () => open() }), ...queryLog(onQuery) });
  let closed = false;
  const counts = { commits: 0, rollbacks: 0 };
  const statements = new Map<string, SqliteStatement>();
  /** The writer lock is per real file; the file must be open to know it. */
  const serialisedOpen = <T>(fn: () => Promise<T>): Promise<T> => {
    open();
    return serialised(key, fn);
  };

  const write = <T>(fn: (trx: Kysely<DB>) => Promise<T>): Promise<T> =>
    serialisedOpen(() => db.connection().execute(async (conn) => {
      await sql`begin immediate`.execute(conn);
      try {
        const out = await fn(conn);
        await sql`commit`.execute(conn);
        counts.commits++;
        return out;
      } catch (err) {
        counts.rollbacks++;
        await sql`rollback`.execute(conn).catch(() => undefined);
        throw err;
      }
    }));

  return {
    kind: 'sqlite',
    db,
    write,
    statement(text) {
      let st = statements.get(text);
      if (!st) {
        st = open().prepare(text);
        statements.set(text, st);
      }
      return st;
    },
    writes: () => ({ ...counts }),
    migrate: () => serialisedOpen(async () => {
      // Another process may be migrating the same file: retry while it holds the lock.
      for (let attempt = 0; ; attempt++) {
        try {
          return await runMigrations(db);
        } catch (err) {
          if (attempt >= 5 || !SQLITE_BUSY.test(String((err as Error)?.message))) throw err;
          await new Promise((r) => setTimeout(r, 50 * (attempt + 1)));
        }
      }
    }),
    ping: async () => { await sql`select 1`.execute(db); },
    close: async () => {
      if (closed) return;
      closed = true;
      statements.clear();
      if (!raw) return void (await db.destroy());
      await serialised(key, () => db.destroy());
      const l = lockFor(key);
      if (--l.users <= 0) sqliteLocks.delete(key);
    },
  };
}

function openPostgres(url: string, logger: Logger, onQuery?: QueryObserver): Database {
  const pool = new pg.Pool({
    connectionString: url,
    Client: PreparingClient,
    max: 10,
    // int8 (bigint: epoch ms, counts) as number: every value we store fits in 2^53.
    types: {
      getTypeParser: ((oid: number, format?: 'text' | 'binary') =>
        oid === 20 ? (v: string) => Number(v) : pg.types.getTypeParser(oid, format as 'text')) as typeof pg.types.getTypeParser,
    },
  });
  // An idle client whose server goes away emits 'error' on the pool: log it, never crash on it.
  pool.on('error', (err) => logger.warn({ err }, 'idle PostgreSQL connection lost'));
  // A checked-out client has no listener of the pool's: a server restart (57P01) between its queries would
  // be an unhandled 'error' that ends the process. Its next query fails instead, and the pool replaces it.
  pool.on('connect', (client) => client.on('error', (err) => logger.warn({ err: err.message }, 'PostgreSQL connection lost')));
  const db = new Kysely<DB>({ dialect: new PostgresDialect({ pool }), ...queryLog(onQuery) });
  let closed = false;
  const counts = { commits: 0, rollbacks: 0 };
  return {
    kind: 'postgres',
    db,
    write: async (fn) => {
      try {
        const out = await db.transaction().execute((trx) => fn(trx));
        counts.commits++;
        return out;
      } catch (err) {
        counts.rollbacks++;
        throw err;
      }
    },
    writes: () => ({ ...counts }),
    migrate: () => runMigrations(db),
    ping: async () => { await sql`select 1`.execute(db); },
    close: async () => {
      if (closed) return;
      closed = true;
      await db.destroy();
    },
  };
}

async function runMigrations(db: Kysely<DB>): Promise<void> {
  const { error, results } = await createMigrator(db).migrateToLatest();
  if (error) {
    const failed = results?.find((r) => r.status === 'Error')?.migrationName;
    if (error instanceof Error && SQLITE_BUSY.test(error.message)) throw error;
    throw new CsError(CloudErrors.MIGRATION_FAILED, `database migration ${failed ?? ''} failed: ${(error as Error)?.message ?? String(error)}`.replace('  ', ' '));
  }
}
