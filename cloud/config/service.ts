import type { Logger } from '../../lib/log.ts';
import { CsError } from '../../lib/errors.ts';
import type { SchemaProblem } from '../../lib/schema.ts';
import type { Database } from '../db/database.ts';
import { CloudErrors } from '../errors.ts';
import { applyDocument, type Runtime } from './apply.ts';
import { canonicalJson, documentHash, summarise } from './diff.ts';
import { checkDocument, CONFIG_KINDS, type CheckContext, type ConfigDocs, type ConfigKind, type ConfigSource } from './kinds.ts';
import { appendConfigLog, listChanges, readCurrent, readVersions, setFileHash, writeVersion, type ChangeEntry, type StoredConfig } from './store.ts';

/**
 * Configuration as data (README "Configuration as data", docs/architecture.md#configuration-as-data):
 * a change is checked whole (schema and cross-checks), refused whole with every problem, or stored
 * in one transaction (new version, audit row) and then applied to the running cloud. Every worker
 * polls the versions and applies what another worker stored. At start the config file's values
 * seed the kinds the database does not hold; a file edited since it was last applied is applied as
 * an audited change (source `file`); an unchanged file leaves the database's version in force.
 */

export const FILE_ACTOR = 'config-file';

export interface ConfigServiceDeps {
  database: Database;
  runtime: Runtime;
  ctx: CheckContext;
  /** The values the cloud was started with: its config file's, or the built-in defaults. */
  initial: ConfigDocs;
  now: () => number;
  logger: Logger;
}

export interface ChangeRequest { actor: string; source: ConfigSource; baseVersion?: number }
export interface ChangeResult { kind: ConfigKind; version: number; changed: boolean; summary: string }
export interface KindVersion { kind: ConfigKind; version: number; updatedAt: number; updatedBy: string }

export interface ConfigService {
  start(): Promise<void>;
  stop(): Promise<void>;
  /** Every kind with its version, newest change's time and author. */
  list(): Promise<KindVersion[]>;
  get(kind: ConfigKind): Promise<KindVersion & { document: unknown }>;
  /** Checks, stores, audits and applies a whole document; throws CONFIG_REFUSED (with `problems`) or CONFIG_STALE. */
  change(kind: ConfigKind, doc: unknown, req: ChangeRequest): Promise<ChangeResult>;
  changes(opts: { limit: number; before?: number; kind?: ConfigKind }): Promise<ChangeEntry[]>;
  /** Applies what another worker stored: the cloud's version poll gives the versions it read (else read here). */
  sync(versions?: Map<string, number>): Promise<void>;
}

/** The refusal of a document: the error the API answers (400), with every problem. */
export function refusal(kind: ConfigKind, problems: SchemaProblem[]): CsError {
  return new CsError(CloudErrors.CONFIG_REFUSED, `${kind} refused, nothing changed: ${problems.map((p) => `${p.key}: ${p.message}`).join('; ')}`, { problems });
}

export function createConfigService(deps: ConfigServiceDeps): ConfigService {
  const { database, now, logger } = deps;
  const applied = new Map<ConfigKind, number>();
  /** The version of a kind another worker stored that did not fit this one at its last poll (logged once). */
  const unfit = new Map<ConfigKind, number>();
  // One sync at a time (the poll's and a direct call's), in order.
  let syncing: Promise<void> = Promise.resolve();

  function put<K extends ConfigKind>(kind: K, version: number, doc: ConfigDocs[K]): void {
    if ((applied.get(kind) ?? 0) >= version) return;
    applyDocument(deps.runtime, kind, doc, version);
    applied.set(kind, version);
  }

  async function refuse(kind: ConfigKind, req: ChangeRequest, problems: SchemaProblem[], offered: unknown): Promise<void> {
    await database.write((trx) => appendConfigLog(trx, {
      at: now(), kind, actor: req.actor, source: req.source, outcome: 'refused', version: null,
      summary: `refused: ${problems.map((p) => `${p.key}: ${p.message}`).join('; ')}`.slice(0, 2000), after: offered, problems,
    }));
    logger.warn({ kind, actor: req.actor, source: req.source, problems }, 'configuration change refused');
  }

  async function change<K extends ConfigKind>(kind: K, doc: unknown, req: ChangeRequest & { fileHash?: string }): Promise<ChangeResult> {
    const r = checkDocument(kind, doc, deps.ctx);
    if (!r.ok) {
      await refuse(kind, req, r.problems, doc);
      throw refusal(kind, r.problems);
    }
    const at = now();
    const out = await database.write(async (trx): Promise<{ stale: number } | ChangeResult> => {
      const cur = await readCurrent(trx, kind);
      const from = cur?.version ?? 0;
      if (req.baseVersion !== undefined && req.baseVersion !== from) return { stale: from };
      if (cur && canonicalJson(cur.body) === canonicalJson(r.value)) {
        if (req.fileHash) await setFileHash(trx, kind, req.fileHash);
        return { kind, version: from, changed: false, summary: 'no change' };
      }
      if (!await writeVersion(trx, kind, r.value, from, at, req.actor, req.fileHash)) return { stale: from };
      const summary = summarise(cur?.body, r.value);
      await appendConfigLog(trx, { at, kind, actor: req.actor, source: req.source, outcome: 'applied', version: from + 1, summary, before: cur?.body, after: r.value });
      return { kind, version: from + 1, changed: true, summary };
    });
    if ('stale' in out) {
      const latest = (await readCurrent(database.db, kind))?.version ?? 0;
      const problem = { key: 'baseVersion', message: `version ${req.baseVersion ?? out.stale} is not the current one (${latest}): read it again and resubmit` };
      await refuse(kind, req, [problem], doc);
      throw new CsError(CloudErrors.CONFIG_STALE, `${kind}: ${problem.message}`, { problems: [problem] });
    }
    if (out.changed) {
      put(kind, out.version, r.value);
      logger.info({ kind, version: out.version, actor: req.actor, source: req.source, summary: out.summary }, 'configuration changed');
    }
    return out;
  }

  /** The file's value against the database's at start (see the module comment). */
  async function reconcile<K extends ConfigKind>(kind: K): Promise<void> {
    const fileDoc = deps.initial[kind];
    const fileHash = documentHash(fileDoc);
    for (let attempt = 0; attempt < 5; attempt++) {
      let cur = await readCurrent(database.db, kind);
      if (!cur) {
        const seeded = await database.write(async (trx) => {
          if (!await writeVersion(trx, kind, fileDoc, 0, now(), FILE_ACTOR, fileHash)) return false;
          await appendConfigLog(trx, { at: now(), kind, actor: FILE_ACTOR, source: 'file', outcome: 'applied', version: 1, summary: 'seeded from the config file', after: fileDoc });
          return true;
        });
        if (seeded) return void applied.set(kind, 1);
        cur = await readCurrent(database.db, kind);
        if (!cur) continue;
      }
      if (cur.fileHash === fileHash) return useStored(kind, cur);
      try {
        const r = await change(kind, fileDoc, { actor: FILE_ACTOR, source: 'file', fileHash, baseVersion: cur.version });
        if (!r.changed) await useStored(kind, { ...cur, version: r.version });
        return;
      } catch (err) {
        if ((err as CsError).code !== CloudErrors.CONFIG_STALE) throw err;
      }
    }
    throw new CsError(CloudErrors.CONFIG_INVALID, `${kind}: could not reconcile the config file with the database (changed concurrently)`);
  }

  /** The database's version in force, if it still fits the district and profiles. */
  async function useStored<K extends ConfigKind>(kind: K, cur: StoredConfig): Promise<void> {
    const r = checkDocument(kind, cur.body, deps.ctx);
    if (!r.ok) {
      logger.error({ kind, version: cur.version, problems: r.problems }, 'the stored configuration no longer fits the district or profiles: the config file\'s value stays in force until it is changed');
      applied.set(kind, cur.version);
      return;
    }
    if (canonicalJson(r.value) !== canonicalJson(deps.initial[kind])) applyDocument(deps.runtime, kind, r.value, cur.version);
    applied.set(kind, cur.version);
  }

  async function syncOnce(read?: Map<string, number>): Promise<void> {
    const versions = read ?? await readVersions(database.db);
    for (const kind of CONFIG_KINDS) {
      const v = versions.get(kind);
      if (v === undefined || v <= (applied.get(kind) ?? 0)) continue;
      const cur = await readCurrent(database.db, kind);
      if (!cur) continue;
      const r = checkDocument(kind, cur.body, deps.ctx);
      if (!r.ok) {
        // Not marked applied: this worker's registry may not have seen yet the unit or device the change names
        // (another worker's, polled separately); the next poll tries again, so the workers do not stay apart.
        if (unfit.get(kind) !== cur.version) logger.error({ kind, version: cur.version, problems: r.problems }, 'a stored configuration does not fit this worker (yet): not applied, tried again at the next poll');
        unfit.set(kind, cur.version);
        continue;
      }
      unfit.delete(kind);
      put(kind, cur.version, r.value);
      logger.info({ kind, version: cur.version, by: cur.updatedBy }, 'configuration changed by another worker: applied');
    }
  }

  const entry = (s: StoredConfig): KindVersion => ({ kind: s.kind, version: s.version, updatedAt: s.updatedAt, updatedBy: s.updatedBy });

  return {
    async start() {
      for (const kind of CONFIG_KINDS) await reconcile(kind);
    },
    async stop() {
      await syncing;
    },
    async list() {
      const out: KindVersion[] = [];
      for (const kind of CONFIG_KINDS) {
        const cur = await readCurrent(database.db, kind);
        out.push(cur ? entry(cur) : { kind, version: 0, updatedAt: 0, updatedBy: FILE_ACTOR });
      }
      return out;
    },
    async get(kind) {
      const cur = await readCurrent(database.db, kind);
      return cur ? { ...entry(cur), document: cur.body } : { kind, version: 0, updatedAt: 0, updatedBy: FILE_ACTOR, document: deps.initial[kind] };
    },
    change: (kind, doc, req) => change(kind, doc, req),
    changes: (opts) => listChanges(database.db, opts),
    sync(versions) {
      const run = syncing.then(() => syncOnce(versions));
      syncing = run.catch(() => undefined);
      return run;
    },
  };
}
