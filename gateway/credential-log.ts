import { closeSync, fsyncSync, openSync, writeSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { chainHash, firstFault, headFault, type LinkFault } from '../lib/hash-chain.ts';
import { readIfExists } from './credentials-file.ts';

/**
 * The broker's credential log (docs/architecture.md#audit-chains): `credentials-log.jsonl` beside
 * `credentials.json`, one JSON line per change of a machine credential (create, import, rotate,
 * revoke: who, what, when, for which username; never a secret or its hash), hash-chained with
 * lib/hash-chain.ts. Its head is kept in `credentials.json` (`logHead`), written atomically with the
 * change, so deleted last lines show too. The lines are appended after that write: a crash between
 * the two shows as a head past the log, never as a change with no line.
 */

export type MachineCredentialAction = 'create' | 'import' | 'rotate' | 'revoke';
export interface MachineCredentialChange { action: MachineCredentialAction; username: string; role?: string }
export interface MachineLogLine { seq: number; at: string; action: string; username: string; role: string | null; actor: string; prev_hash: string | null; hash: string }

/** The hashed fields, in this order (never reorder, only add in a new version). */
const fields = (l: MachineLogLine) => [Number(l.seq), l.at, l.action, l.username, l.role ?? null, l.actor];

export const logFileOf = (credentialsFile: string) => join(dirname(credentialsFile), 'credentials-log.jsonl');

function readLines(file: string): { lines: MachineLogLine[]; bad?: number } {
  const lines: MachineLogLine[] = [];
  for (const [i, text] of (readIfExists(file) ?? '').split('\n').filter((t) => t.trim()).entries()) {
    try {
      lines.push(JSON.parse(text) as MachineLogLine);
    } catch {
      return { lines, bad: i + 1 };
    }
  }
  return { lines };
}

/** The lines for `changes` after the log's last line, and their head; `commit` appends them (fsync). */
export function planLog(credentialsFile: string, changes: MachineCredentialChange[], actor: string, at: Date): { head: string; commit(): void } {
  const file = logFileOf(credentialsFile);
  const { lines } = readLines(file);
  let prev = lines.length ? lines[lines.length - 1]!.hash : null;
  let seq = lines.length ? Number(lines[lines.length - 1]!.seq) : 0;
  const out = changes.map((c) => {
    const l = { seq: ++seq, at: at.toISOString(), action: c.action, username: c.username, role: c.role ?? null, actor, prev_hash: prev } as MachineLogLine;
    l.hash = chainHash(fields(l), prev);
    prev = l.hash;
    return l;
  });
  return {
    head: prev!,
    commit() {
      const fd = openSync(file, 'a', 0o600);
      try {
        writeSync(fd, out.map((l) => JSON.stringify(l)).join('\n') + '\n');
        fsyncSync(fd);
      } finally {
        closeSync(fd);
      }
    },
  };
}

export interface MachineLogReport { ok: boolean; rows: number; head: string | null; fault: LinkFault | null }

/** Recomputes the log of a credentials file against the head it records. */
export function verifyMachineLog(credentialsFile: string): MachineLogReport {
  const text = readIfExists(credentialsFile);
  const head = text ? (JSON.parse(text) as { logHead?: string }).logHead ?? null : null;
  const { lines, bad } = readLines(logFileOf(credentialsFile));
  const { fault, last } = firstFault(lines, fields);
  const f = fault
    ?? (bad !== undefined ? { seq: lines.length + 1, kind: 'altered' as const, message: `line ${bad} is not JSON: it was altered` } : undefined)
    ?? headFault(head, last, lines.length ? Number(lines[lines.length - 1]!.seq) : null);
  return { ok: !f, rows: lines.length, head, fault: f ?? null };
}
