/**
 * The system mode as the case code sees it. Emergency mode itself (switching, triggers, audit) is
 * issue #6; rules and deadlines only ask `emergency()`. The default provider is normal mode.
 */
export interface ModeProvider {
  emergency(): boolean;
  /** The emergency period (mode epoch) in force, or null in normal mode; stamped on its cases. */
  epoch?(): number | null;
}

export interface SettableMode extends ModeProvider {
  set(emergency: boolean): void;
}

export function createModeProvider(initial = false): SettableMode {
  let on = initial;
  return { emergency: () => on, set: (v) => { on = v; } };
}

export const NORMAL_MODE: ModeProvider = { emergency: () => false };
