import type { Role } from './tokens.ts';

/**
 * The case workflow of GB/T 30428.8 as an explicit state machine (docs/domain.md#the-case):
 * registered (立案) -> dispatched (派遣) -> accepted -> handled (处置, reported back 反馈) ->
 * closed (核查 passed, 结案); a failed verification sends it back (rework 返工 -> dispatched).
 * Extension (延期) keeps the state and sets a new deadline; deferral (缓办) suspends the case until
 * it is reopened; void (作废) ends a false alarm, kept forever. A recurrence after closing reopens
 * the case as rework.
 */

import { CASE_STATES, FINAL_STATES, isFinal, isRunning, RUNNING_STATES, type CaseState } from '../lib/vocabulary.ts';

// The states are vocabulary (lib/vocabulary.ts); the transitions between them are this module's.
export { CASE_STATES, FINAL_STATES, isFinal, isRunning, RUNNING_STATES, type CaseState };

export const CASE_ACTIONS = [
  'dispatch', 'accept', 'handle', 'verify', 'rework', 'extend', 'defer', 'void', 'reopen',
  // Same-state actions of the crew's and commander's work (docs/domain.md#milestones-and-extension-requests).
  'note', 'on-site', 'made-safe', 'request-extension', 'refuse-extension',
] as const;
export type CaseAction = (typeof CASE_ACTIONS)[number];

/** From each state, each legal action and the state it leads to (`same` keeps the state; `resume` the state before deferral). */
const ON_THE_JOB = { 'on-site': 'same', 'made-safe': 'same', 'request-extension': 'same', 'refuse-extension': 'same' } as const;
export const TRANSITIONS: Record<CaseState, Partial<Record<CaseAction, CaseState | 'same' | 'resume'>>> = {
  registered: { dispatch: 'dispatched', defer: 'deferred', void: 'void', note: 'same' },
  dispatched: { accept: 'accepted', extend: 'same', defer: 'deferred', void: 'void', note: 'same', ...ON_THE_JOB },
  accepted: { handle: 'handled', extend: 'same', defer: 'deferred', void: 'void', note: 'same', ...ON_THE_JOB },
  handled: { verify: 'closed', rework: 'dispatched', note: 'same' },
  deferred: { reopen: 'resume', void: 'void', note: 'same' },
  closed: { reopen: 'dispatched', note: 'same' },
  void: {},
};

/** Who may take each action. A crew acts only on its own unit's cases. */
export const ACTION_ROLES: Record<CaseAction, readonly Role[]> = {
  dispatch: ['operator', 'commander', 'admin'],
  accept: ['crew', 'commander', 'admin'],
  handle: ['crew', 'admin'],
  verify: ['verifier', 'admin'],
  rework: ['verifier', 'admin'],
  extend: ['commander', 'admin'],
  defer: ['commander', 'admin'],
  void: ['operator', 'commander', 'admin'],
  reopen: ['operator', 'commander', 'verifier', 'admin'],
  note: ['crew', 'operator', 'commander', 'verifier', 'admin', 'integrator', 'inspector'],
  'on-site': ['crew', 'admin'],
  'made-safe': ['crew', 'admin'],
  'request-extension': ['crew', 'admin'],
  'refuse-extension': ['commander', 'admin'],
};

/** Actions that record a milestone reached (the milestone's name is the action's). */
export const MILESTONE_ACTIONS: ReadonlySet<CaseAction> = new Set(['on-site', 'made-safe']);

/** Actions that need a reason in the history. */
export const NEEDS_REASON: ReadonlySet<CaseAction> = new Set(['rework', 'extend', 'defer', 'void', 'reopen', 'request-extension', 'refuse-extension']);

/** Actions whose body may carry `photos` (ids uploaded to the case first). */
export const PHOTO_ACTIONS: ReadonlySet<CaseAction> = new Set(['handle', 'note', 'rework']);

export function legalActions(state: CaseState): CaseAction[] {
  return Object.keys(TRANSITIONS[state] ?? {}) as CaseAction[];
}

/** The state an action leads to, or undefined when the action is illegal in `state`. */
export function nextState(state: CaseState, action: CaseAction, resumeState?: string | null): CaseState | undefined {
  const to = TRANSITIONS[state]?.[action];
  if (to === undefined) return undefined;
  if (to === 'same') return state;
  if (to === 'resume') return (resumeState as CaseState | null) ?? 'dispatched';
  return to;
}

export function illegalMessage(id: string, state: CaseState, action: CaseAction): string {
  const legal = legalActions(state);
  return `cannot ${action} case ${id}: it is ${state}; ${legal.length ? `allowed now: ${legal.join(', ')}` : 'no action is allowed in that state'}`;
}

/** Overdue: running past its deadline. */
export function isOverdue(state: string, deadline: number, now: number): boolean {
  return isRunning(state) && deadline < now;
}
