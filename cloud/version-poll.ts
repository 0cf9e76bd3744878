import { sql, type Kysely } from 'kysely';
import type { Logger } from '../lib/log.ts';
import type { DB } from './db/schema.ts';

/**
 * One poll per worker of the versions other workers bump (docs/architecture.md#device-registry): the
 * registry's (`registry_meta`) and each configuration kind's (`config_current`), read in one query on one
 * timer that the cloud starts in start() and stops in stop(). Each subscriber keeps its own interval
 * (`registry.pollMs`, `configSyncMs`; 0 or less: never told): the timer ticks at the smallest, and a
 * subscriber is told at the first tick at least its interval (less half a tick) after it was last told.
 * Subscribers are told in the order they subscribed (the registry first: a configuration naming a unit
 * another worker just added then fits at the same tick).
 */

export interface Versions {
  registry: number;
  /** Each configuration kind's version (kinds not seeded yet are absent). */
  config: Map<string, number>;
}

export interface VersionSubscriber {
  name: string;
  everyMs: number;
  onVersions(v: Versions): Promise<unknown>;
}

export interface VersionPoll {
  subscribe(s: VersionSubscriber): void;
  start(): void;
  stop(): Promise<void>;
  /** One tick now, as the timer's (tests): tells the subscribers that are due. */
  tick(): Promise<void>;
  /** The timer's interval (undefined when no subscriber polls). */
  tickMs(): number | undefined;
}

/** The registry's row in the union (no configuration kind starts with @). */
const REGISTRY = '@registry';

/** Both versions in one round trip. */
export async function readAllVersions(db: Kysely<DB>): Promise<Versions> {
  const rows = await db.selectFrom('registry_meta').select([sql<string>`${sql.lit(REGISTRY)}`.as('kind'), 'version']).where('id', '=', 1)
    .unionAll(db.selectFrom('config_current').select(['kind', 'version']))
    .execute();
  const out: Versions = { registry: 0, config: new Map() };
  for (const r of rows) {
    if (r.kind === REGISTRY) out.registry = Number(r.version);
    else out.config.set(r.kind, Number(r.version));
  }
  return out;
}

export function createVersionPoll(deps: { db: () => Kysely<DB>; logger: Logger; clock?: () => number }): VersionPoll {
  const clock = deps.clock ?? (() => performance.now());
  const subs: (VersionSubscriber & { last: number })[] = [];
  let timer: NodeJS.Timeout | undefined;
  let running: Promise<void> | undefined;
  const live = () => subs.filter((s) => s.everyMs > 0);
  const tickMs = () => (live().length ? Math.min(...live().map((s) => s.everyMs)) : undefined);

  async function once(): Promise<void> {
    const t = clock();
    const tick = tickMs() ?? 0;
    const due = live().filter((s) => t - s.last + tick / 2 >= s.everyMs);
    if (!due.length) return;
    let v: Versions;
    try {
      v = await readAllVersions(deps.db());
    } catch (err) {
      deps.logger.warn({ err: (err as Error).message }, 'versions not read');
      return;
    }
    for (const s of due) {
      s.last = t;
      await s.onVersions(v).catch((err: Error) => deps.logger.warn({ err: err.message, part: s.name }, 'a version poll was not applied'));
    }
  }

  const run = () => (running ??= once().finally(() => { running = undefined; }));

  return {
    subscribe: (s) => void subs.push({ ...s, last: clock() }),
    start() {
      const tick = tickMs();
      if (timer || tick === undefined) return;
      for (const s of subs) s.last = clock();
      timer = setInterval(() => void run(), tick);
      timer.unref?.();
    },
    async stop() {
      clearInterval(timer);
      timer = undefined;
      await running;
    },
    tick: async () => {
      await running;
      await run();
    },
    tickMs,
  };
}
