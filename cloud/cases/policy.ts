import { Type, type Static } from '@sinclair/typebox';
import type { Logger } from '../../lib/log.ts';
import type { Device } from '../../devices/district.ts';
import type { Calendar } from '../calendar.ts';
import type { Categories } from '../categories.ts';
import type { Catalogue } from '../catalogue/schema.ts';
import type { District } from '../../devices/district.ts';
import type { ModeProvider } from '../mode.ts';
import type { Breach } from '../rules.ts';
import type { Routing } from '../routing.ts';

/** The settings and data that drive sensor cases, and what a breach changes (docs/domain.md#the-case). */

const HOUR = 3_600_000;

export interface WorkflowPolicy {
  /** Verification needs the asset's readings back in range for at least this long. */
  verifyClearMs: number;
  /** The same hazard within this time after closing reopens the case as rework. */
  reopenWithinMs: number;
  /** Sensor cases are dispatched as they are registered; false leaves them registered for an operator to dispatch. */
  autoDispatch: boolean;
  /**
   * A continuing breach that changes nothing (severity, hazards, deadline) updates the case's
   * counters only; its history gets at most one "still breaching" row (and one `case.updated`
   * event) per this interval.
   */
  stillBreachingEveryMs: number;
  /** An extension moves a deadline by at most this (a case under the 12-hour cap never past the cap). */
  maxExtensionMs: number;
  /**
   * Voiding a case while its sensor still breaches (a false alarm) holds back a new case for that
   * asset and hazard for this long; 0 turns it off.
   */
  voidSuppressMs: number;
}

export const DEFAULT_WORKFLOW: WorkflowPolicy = {
  verifyClearMs: 10 * 60_000, reopenWithinMs: 24 * HOUR, autoDispatch: true, stillBreachingEveryMs: 15 * 60_000,
  maxExtensionMs: 30 * 24 * HOUR, voidSuppressMs: 12 * HOUR,
};

/** The workflow settings as the cloud's config file gives them (`workflow`); DEFAULT_WORKFLOW fills the rest. */
export const WorkflowConfig = Type.Object({
  verifyClearMs: Type.Optional(Type.Integer({ minimum: 0 })),
  reopenWithinMs: Type.Optional(Type.Integer({ minimum: 0 })),
  autoDispatch: Type.Optional(Type.Boolean()),
  stillBreachingEveryMs: Type.Optional(Type.Integer({ minimum: 1000 })),
  maxExtensionMs: Type.Optional(Type.Integer({ minimum: 60_000, maximum: 366 * 24 * HOUR })),
  voidSuppressMs: Type.Optional(Type.Integer({ minimum: 0, maximum: 30 * 24 * HOUR })),
}, { additionalProperties: false });
export type WorkflowConfig = Static<typeof WorkflowConfig>;

/** What case code needs besides the transaction: the data that drives cases. */
export interface CaseEnv {
  /** Per sensor hazard, derived from the catalogue (cloud/catalogue/ categoriesOf). */
  categories: Categories;
  /** The category catalogue people's cases are registered against; the demo's when omitted. */
  catalogue?: Catalogue;
  /** The district (assets by component code) and the mode, for people's cases (cloud/cases/person.ts). */
  district?: District;
  mode?: ModeProvider;
  calendar: Calendar;
  routing: Routing;
  workflow: WorkflowPolicy;
}

/** What one breach did to a case. */
export interface CaseChange {
  action: 'opened' | 'updated' | 'reopened';
  caseId: string;
  hazard: string;
  severity: string;
  unit: string;
  state: string;
  /** A related hazard joined this case with this breach. */
  joined?: boolean;
  /** The change is in the case's history (and gets an event); false for a quiet counter update. */
  recorded: boolean;
}

export interface BreachContext {
  device: Device;
  /** Device kind (profile kind), for routing. */
  kind: string;
  breach: Breach;
  env: CaseEnv;
  /** Registration time (the cloud's clock). */
  at: number;
  /** A historical (replayed) reading may update an open case but never opens one. */
  historical: boolean;
  /** Emergency mode at the time of the breach. */
  emergency: boolean;
  /** The emergency period in force (mode epoch), kept on a case under the emergency cap for evaluation. */
  emergencyEpoch?: number | null;
  log: Logger;
}
