import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * Vitest global setup: the browser tests drive the built web application (cloud/web/dist), so a
 * build older than its sources (cloud/web/app, lib/vocabulary.ts) is rebuilt first. `npm install`
 * builds it too (the `prepare` script); this only catches an edit made since.
 */
const ROOT = fileURLToPath(new URL('../../', import.meta.url));

function newest(path: string): number {
  const st = statSync(path);
  if (!st.isDirectory()) return st.mtimeMs;
  return Math.max(st.mtimeMs, ...readdirSync(path).map((n) => newest(join(path, n))));
}

export default async function setup(): Promise<void> {
  const built = join(ROOT, 'cloud/web/dist/index.html');
  const sources = Math.max(newest(join(ROOT, 'cloud/web/app')), newest(join(ROOT, 'cloud/web/vite.config.ts')), newest(join(ROOT, 'lib/vocabulary.ts')));
  if (existsSync(built) && statSync(built).mtimeMs >= sources) return;
  const { build } = await import('vite');
  await build({ configFile: join(ROOT, 'cloud/web/vite.config.ts'), logLevel: 'warn' });
}
