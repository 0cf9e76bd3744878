/** Reading and writing the credentials file (credentials.ts), with the store's error codes. */
import { readFileSync } from 'node:fs';
import { writeFileAtomic } from '../lib/atomic-file.ts';
import { CsError } from '../lib/errors.ts';
import { GatewayErrors } from './errors.ts';

export function corrupt(file: string, problem: string): CsError {
  return new CsError(
    GatewayErrors.CREDENTIALS_CORRUPT,
    `credentials file ${file} is corrupt (${problem}); refusing to use or overwrite it: restore it from a backup or move it away`,
    { file, problem },
  );
}

export function readIfExists(file: string): string | undefined {
  try {
    return readFileSync(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new CsError(GatewayErrors.CREDENTIALS_READ, `cannot read credentials file ${file}: ${(err as Error).message}`, { file });
  }
}

/** Writes `file` atomically (lib/atomic-file.ts), mode 0600 in a 0700 directory. */
export function writeAtomic(file: string, body: string): void {
  try {
    writeFileAtomic(file, body, { mode: 0o600, dirMode: 0o700 });
  } catch (err) {
    throw new CsError(GatewayErrors.CREDENTIALS_WRITE, `cannot write credentials file ${file}: ${(err as Error).message}`, { file });
  }
}
