import { createHash, randomBytes } from 'node:crypto';
import { mkdir, open, readFile, rename, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';

/**
 * Photos on disk, content-addressed: `<dir>/<first two hex>/<sha256 hex>`. A photo is written to a
 * temporary file, synced and renamed into place, so a reader never sees half a photo and the same
 * bytes uploaded twice are stored once.
 */
export interface PhotoStore {
  readonly dir: string;
  /** Stores the bytes (once); returns their sha256 hex. */
  put(bytes: Buffer): Promise<string>;
  get(id: string): Promise<Buffer | undefined>;
}

const ID = /^[0-9a-f]{64}$/;

export function sha256(bytes: Buffer): string {
  return createHash('sha256').update(bytes).digest('hex');
}

export function createPhotoStore(dir: string): PhotoStore {
  const pathOf = (id: string) => join(dir, id.slice(0, 2), id);
  return {
    dir,
    async put(bytes) {
      const id = sha256(bytes);
      const final = pathOf(id);
      if (await stat(final).then(() => true, () => false)) return id;
      await mkdir(join(dir, id.slice(0, 2)), { recursive: true });
      const tmp = `${final}.tmp-${randomBytes(6).toString('hex')}`;
      try {
        const fh = await open(tmp, 'wx');
        try {
          await fh.writeFile(bytes);
          await fh.sync();
        } finally {
          await fh.close();
        }
        await rename(tmp, final);
      } catch (err) {
        await rm(tmp, { force: true });
        throw err;
      }
      return id;
    },
    async get(id) {
      if (!ID.test(id)) return undefined;
      return readFile(pathOf(id)).catch(() => undefined);
    },
  };
}
