/**
 * The single-process hand-off (the demo: broker and cloud in one process): the broker's
 * pre-PUBACK hook stores each reading and edge alarm through the cloud before acknowledging it, so a
 * PUBACK means "stored" (docs/architecture.md#platform-notes: authorizePublish is the one hook before the PUBACK).
 * A reading the cloud rejects for good (bad payload) is acknowledged, since resending cannot
 * fix it; one the cloud failed to store is refused: no PUBACK, the connection is closed and
 * the edge resends it from its outbox.
 */
import { parseTopic } from '../lib/topics.ts';
import type { Identity } from './credentials.ts';

/** What the cloud's `ingest` answers, as far as the hand-off cares. */
export type ReadingSink = (gateway: string, topic: string, payload: Buffer) => Promise<{ status: string; message?: string }>;

export function storeBeforePuback(sink: () => ReadingSink | undefined): (identity: Identity, topic: string, payload: Buffer) => Promise<void> {
  return async (_identity, topic, payload) => {
    const t = parseTopic(topic);
    // Readings and edge alarms alike: an edge alarm must raise its case before its PUBACK too.
    if (t?.kind !== 'up' && t?.kind !== 'alarm') return;
    const ingest = sink();
    if (!ingest) throw new Error('cloud not started yet');
    const r = await ingest(t.gateway, topic, payload);
    if (r.status === 'failed') throw new Error(r.message ?? 'reading not stored');
  };
}
