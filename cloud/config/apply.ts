import { categoriesOf } from '../catalogue/index.ts';
import { createCalendar } from '../calendar.ts';
import type { CaseEnv } from '../cases/index.ts';
import type { Emergency } from '../emergency/service.ts';
import type { Escalator } from '../escalation.ts';
import type { RuleEngine } from '../rules.ts';
import type { ConfigDocs, ConfigKind } from './kinds.ts';

/**
 * What a checked document changes in the running cloud, one small handler per kind. Every consumer
 * reads the value in force when it needs it (the case environment's fields, the engine's rule set,
 * the case clock's and the emergency service's settings), so the next reading or case sees it.
 */

export interface Runtime {
  env: CaseEnv;
  engine: RuleEngine;
  escalator?: Escalator;
  emergency?: Emergency;
  /** Where the calendar's warning about a year without official days goes. */
  warn: (message: string) => void;
}

/** `version`: the stored version being applied (the same on every worker), when it comes from the database. */
export const APPLY: { [K in ConfigKind]: (rt: Runtime, doc: ConfigDocs[K], version?: number) => void } = {
  // Rules whose id and definition are unchanged keep their hold and hysteresis state (cloud/rules.ts).
  rules: (rt, doc) => rt.engine.setRuleSet(doc),
  catalogue: (rt, doc) => {
    rt.env.catalogue = doc;
    rt.env.categories = categoriesOf(doc);
  },
  routing: (rt, doc) => { rt.env.routing = doc; },
  calendar: (rt, doc) => { rt.env.calendar = createCalendar(doc, { warn: rt.warn }); },
  escalation: (rt, doc) => rt.escalator?.setPolicy(doc),
  // The next warning is decided by the new policy; the next fast-mode command carries the new intervals.
  emergency: (rt, doc, version) => rt.emergency?.configure(doc, version),
};

export function applyDocument<K extends ConfigKind>(rt: Runtime, kind: K, doc: ConfigDocs[K], version?: number): void {
  (APPLY[kind] as (rt: Runtime, doc: ConfigDocs[K], version?: number) => void)(rt, doc, version);
}
