/** Types of bin/build-server.js for the TypeScript that imports it (the bench, tests). */
export interface BuildManifest { entry: string; digest: string; inputs: string[]; builtAt: string }
export function buildServer(opts?: { root?: string; outdir?: string; entryPoints?: Record<string, string>; entry?: string }): Promise<BuildManifest>;
