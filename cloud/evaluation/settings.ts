import type { Kysely, Migration } from 'kysely';
import type { DB } from '../db/schema.ts';

/**
 * 0013: the cloud's settings an admin changes in the product (docs/evaluation.md#public-ranking), one
 * row per key with who changed it last and when. Today one key: `evaluation.public` (the public page of
 * the units' ranking on or off; off until an admin turns it on).
 */
export const settingsMigration: Migration = {
  async up(db: Kysely<any>) {
    await db.schema.createTable('settings')
      .addColumn('key', 'text', (c) => c.primaryKey())
      .addColumn('value', 'text', (c) => c.notNull())
      .addColumn('updated_at', 'bigint', (c) => c.notNull())
      .addColumn('updated_by', 'text', (c) => c.notNull())
      .execute();
  },
  async down(db: Kysely<any>) {
    await db.schema.dropTable('settings').ifExists().execute();
  },
};

export interface SettingsTable {
  key: string;
  /** JSON text. */
  value: string;
  updated_at: number;
  updated_by: string;
}

export const PUBLIC_RANKING_KEY = 'evaluation.public';

export interface PublicRankingSetting {
  enabled: boolean;
  /** When and by whom it was last turned on or off; null when never. */
  updatedAt: number | null;
  updatedBy: string | null;
}

export async function readPublicRanking(db: Kysely<DB>): Promise<PublicRankingSetting> {
  const row = await db.selectFrom('settings').selectAll().where('key', '=', PUBLIC_RANKING_KEY).executeTakeFirst();
  if (!row) return { enabled: false, updatedAt: null, updatedBy: null };
  return { enabled: JSON.parse(row.value) === true, updatedAt: Number(row.updated_at), updatedBy: row.updated_by };
}

export async function writePublicRanking(db: Kysely<DB>, enabled: boolean, actor: string, at: number): Promise<PublicRankingSetting> {
  const value = JSON.stringify(enabled);
  await db.insertInto('settings').values({ key: PUBLIC_RANKING_KEY, value, updated_at: at, updated_by: actor })
    .onConflict((oc) => oc.column('key').doUpdateSet({ value, updated_at: at, updated_by: actor }))
    .execute();
  return { enabled, updatedAt: at, updatedBy: actor };
}
