/** Types of bin/runtime-flags.js for the TypeScript that imports it (the bench, tests). */
export const COMMAND_V8_FLAGS: Record<string, string[]>;
export function applyCommandFlags(command: string | undefined): string[];
