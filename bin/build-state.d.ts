/** Types of bin/build-state.js for the TypeScript that imports it (tests). */
export const ROOT: string;
export const MANIFEST: string;
export function buildDir(env?: NodeJS.ProcessEnv): string;
export function sourceDigest(root: string, files: string[]): string;
export function buildStatus(dir?: string, root?: string): { entry: string; stale?: undefined } | { stale: string; entry?: undefined };
export type RunChoice = { run: 'build'; entry: string; error?: undefined } | { run: 'source'; reason?: string; error?: undefined } | { error: string; run?: undefined };
export function selectRun(env?: NodeJS.ProcessEnv, dir?: string, root?: string): RunChoice;
