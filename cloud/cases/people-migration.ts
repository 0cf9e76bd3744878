import { sql, type Kysely, type Migration } from 'kysely';
import { OPEN_CASE_PREDICATE } from '../db/migrations.ts';

/**
 * 0010: cases from people (issue 13, docs/domain.md#cases-from-people). A case's source (sensor,
 * inspector, hotline, citizen), its catalogue category (GB/T 30428.2 minor-class code), who registered
 * it, whether an inspector fixed it on the spot (自查自纠), and its district (county code: the first 6
 * digits of the component code). "One open case per asset and hazard" holds for sensor cases only:
 * two inspectors may report two heaps of garbage in one street.
 */
export const peopleCasesMigration: Migration = {
  async up(db: Kysely<any>) {
    await db.schema.alterTable('cases').addColumn('source', 'text', (c) => c.notNull().defaultTo('sensor')).execute();
    await db.schema.alterTable('cases').addColumn('category', 'text').execute();
    await db.schema.alterTable('cases').addColumn('reporter', 'text').execute();
    await db.schema.alterTable('cases').addColumn('self_corrected', 'integer', (c) => c.notNull().defaultTo(0)).execute();
    await db.schema.alterTable('cases').addColumn('district', 'text').execute();
    await db.updateTable('cases').set({ district: sql`substr(component_code, 1, 6)` })
      .where(sql<boolean>`length(component_code) >= 6`).execute();
    await db.schema.dropIndex('cases_one_open_per_device_hazard').execute();
    await db.schema.dropIndex('cases_one_open_per_device_group').execute();
    const sensorOpen = sql<boolean>`${OPEN_CASE_PREDICATE} and source = 'sensor'`;
    await db.schema.createIndex('cases_one_open_per_device_hazard').on('cases')
      .columns(['device', 'hazard']).unique().where(sensorOpen).execute();
    await db.schema.createIndex('cases_one_open_per_device_group').on('cases')
      .columns(['device', 'merge_key']).unique().where(sensorOpen).execute();
    await db.schema.createIndex('cases_reporter').on('cases').columns(['reporter', 'opened_at']).execute();
    await db.schema.createIndex('cases_district').on('cases').columns(['district', 'opened_at']).execute();
  },
  async down(db: Kysely<any>) {
    for (const i of ['cases_district', 'cases_reporter', 'cases_one_open_per_device_group', 'cases_one_open_per_device_hazard']) {
      await db.schema.dropIndex(i).execute();
    }
    for (const c of ['district', 'self_corrected', 'reporter', 'category', 'source']) await db.schema.alterTable('cases').dropColumn(c).execute();
    await db.schema.createIndex('cases_one_open_per_device_hazard').on('cases')
      .columns(['device', 'hazard']).unique().where(OPEN_CASE_PREDICATE).execute();
    await db.schema.createIndex('cases_one_open_per_device_group').on('cases')
      .columns(['device', 'merge_key']).unique().where(OPEN_CASE_PREDICATE).execute();
  },
};
