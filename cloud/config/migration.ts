import type { Kysely, Migration } from 'kysely';

/**
 * 0016: configuration as data (docs/architecture.md#configuration-as-data). `config_current` holds
 * per kind the document in force, its version, who changed it last and when, and the hash of the
 * config file's value last applied (so a start tells an edited file from an unchanged one).
 * `config_log` is the audit: every change applied and every change refused, by whom, from where
 * (`api` or `file`), with the keys changed, the documents before and after, or the problems;
 * append-only and hash-chained like the other logs (cloud/audit/chain.ts).
 */
export const configMigration: Migration = {
  async up(db: Kysely<any>) {
    await db.schema.createTable('config_current')
      .addColumn('kind', 'text', (c) => c.primaryKey())
      .addColumn('body', 'text', (c) => c.notNull())
      .addColumn('version', 'integer', (c) => c.notNull())
      .addColumn('updated_at', 'bigint', (c) => c.notNull())
      .addColumn('updated_by', 'text', (c) => c.notNull())
      .addColumn('file_hash', 'text')
      .execute();
    await db.schema.createTable('config_log')
      .addColumn('seq', 'integer', (c) => c.primaryKey())
      .addColumn('at', 'bigint', (c) => c.notNull())
      .addColumn('kind', 'text', (c) => c.notNull())
      .addColumn('actor', 'text', (c) => c.notNull())
      .addColumn('source', 'text', (c) => c.notNull())
      .addColumn('outcome', 'text', (c) => c.notNull())
      .addColumn('version', 'integer')
      .addColumn('summary', 'text', (c) => c.notNull())
      .addColumn('before', 'text')
      .addColumn('after', 'text')
      .addColumn('problems', 'text')
      .addColumn('prev_hash', 'text')
      .addColumn('hash', 'text', (c) => c.notNull())
      .execute();
    await db.schema.createIndex('config_log_kind').on('config_log').columns(['kind', 'seq']).execute();
  },
  async down(db: Kysely<any>) {
    await db.schema.dropTable('config_log').ifExists().execute();
    await db.schema.dropTable('config_current').ifExists().execute();
  },
};

export interface ConfigCurrentTable {
  kind: string;
  /** The document in force, JSON text. */
  body: string;
  version: number;
  updated_at: number;
  updated_by: string;
  /** sha256 of the config file's value (canonical JSON) last seeded or applied; null when never. */
  file_hash: string | null;
}

/** Append-only, hash-chained: every configuration change applied or refused (migration 0016). */
export interface ConfigLogTable {
  seq: number;
  at: number;
  kind: string;
  actor: string;
  /** `api` or `file`. */
  source: string;
  /** `applied` or `refused`. */
  outcome: string;
  /** The version it made (applied), or null (refused). */
  version: number | null;
  /** The keys changed, or why it was refused, in a line people read. */
  summary: string;
  /** JSON text: the document before and after (applied); the document offered (refused, in `after`). */
  before: string | null;
  after: string | null;
  /** JSON text: `[{ key, message }]` (refused). */
  problems: string | null;
  prev_hash: string | null;
  hash: string;
}
