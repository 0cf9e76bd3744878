import { randomBytes } from 'node:crypto';
import { closeSync, fsyncSync, mkdirSync, openSync, renameSync, rmSync, writeSync } from 'node:fs';
import { dirname } from 'node:path';

/**
 * Replaces `file` so that it always holds either the old or the new content, even across a crash
 * or power loss: write a unique temp file in the same directory, fsync it, rename it over the file
 * (rename(2) is atomic within a file system), then fsync the directory so the rename is durable.
 */
export function writeFileAtomic(file: string, body: string, opts: { mode?: number; dirMode?: number } = {}): void {
  const dir = dirname(file);
  const tmp = `${file}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`;
  try {
    mkdirSync(dir, { recursive: true, mode: opts.dirMode });
    const fd = openSync(tmp, 'wx', opts.mode ?? 0o644);
    try {
      writeSync(fd, body);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(tmp, file);
  } catch (err) {
    rmSync(tmp, { force: true });
    throw err;
  }
  try {
    const dfd = openSync(dir, 'r');
    try { fsyncSync(dfd); } finally { closeSync(dfd); }
  } catch {
    // Directory fsync is best effort (not supported everywhere).
  }
}
