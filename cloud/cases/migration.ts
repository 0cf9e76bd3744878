import type { Kysely, Migration } from 'kysely';

/**
 * 0007: what crews and verifiers need (issue 11). A case's pending extension request (JSON text);
 * the action ids already applied (a crew's offline queue resends: exactly once, docs/domain.md#the-case);
 * photos, content-addressed by sha256, and which cases hold them.
 */
export const caseworkMigration: Migration = {
  async up(db: Kysely<any>) {
    await db.schema.alterTable('cases').addColumn('extension_request', 'text').execute();
    await db.schema.createTable('case_actions')
      .addColumn('id', 'text', (c) => c.primaryKey())
      .addColumn('case_id', 'text', (c) => c.notNull())
      .addColumn('action', 'text', (c) => c.notNull())
      .addColumn('actor', 'text', (c) => c.notNull())
      .addColumn('at', 'bigint', (c) => c.notNull())
      .execute();
    await db.schema.createTable('photos')
      .addColumn('id', 'text', (c) => c.primaryKey())
      .addColumn('type', 'text', (c) => c.notNull())
      .addColumn('size', 'integer', (c) => c.notNull())
      .addColumn('taken_at', 'bigint')
      .addColumn('lat', 'double precision')
      .addColumn('lon', 'double precision')
      .addColumn('uploaded_at', 'bigint', (c) => c.notNull())
      .addColumn('by', 'text', (c) => c.notNull())
      .execute();
    await db.schema.createTable('case_photos')
      .addColumn('case_id', 'text', (c) => c.notNull())
      .addColumn('photo_id', 'text', (c) => c.notNull())
      .addColumn('stage', 'text', (c) => c.notNull())
      .addColumn('flags', 'text', (c) => c.notNull())
      .addColumn('at', 'bigint', (c) => c.notNull())
      .addColumn('by', 'text', (c) => c.notNull())
      .addPrimaryKeyConstraint('case_photos_pk', ['case_id', 'photo_id'])
      .execute();
    await db.schema.createIndex('case_photos_photo').on('case_photos').columns(['photo_id']).execute();
  },
  async down(db: Kysely<any>) {
    for (const t of ['case_photos', 'photos', 'case_actions']) await db.schema.dropTable(t).ifExists().execute();
  },
};
