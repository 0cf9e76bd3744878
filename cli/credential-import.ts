/** `citysteward credential import FILE` (gateway/credential-import.ts): all or nothing; generated secrets printed once. */
import { readFileSync } from 'node:fs';
import { parseImport } from '../gateway/credential-import.ts';
import { openCredentialStore, type Role } from '../gateway/credentials.ts';

export async function importCredentials(file: string, dataDir: string, role: Role): Promise<void> {
  const { created, generated } = openCredentialStore(dataDir).importMany(parseImport(readFileSync(file, 'utf8'), role));
  if (generated.length) process.stdout.write(`id,secret\n${generated.map((g) => `${g.username},${g.password}`).join('\n')}\n`);
  console.error(`imported ${created} credential(s) (role ${role}); ${generated.length} secret(s) generated and printed above`);
}
