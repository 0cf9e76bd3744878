import type { Logger } from '../lib/log.ts';
import type { TSchema, Static } from '@sinclair/typebox';
import { CsError } from '../lib/errors.ts';
import { check } from '../lib/schema.ts';
import { Command, type CommandAck } from '../lib/messages.ts';
import { COMMAND_MAX_BYTES } from '../lib/edge-config.ts';
import { EdgeErrors } from './errors.ts';

/**
 * Commands on `cs/v1/{gateway}/cmd`: a tiny dispatcher over a handler map (after aedes' handlers).
 * Every command with a usable id is acknowledged: `ok` when its handler resolved, `rejected` for an
 * unknown type, an invalid or expired command or arguments a handler refuses (CMD_REJECTED), `failed`
 * when the handler threw anything else.
 * A payload that is not JSON, or has no id to acknowledge, is logged and ignored; nothing throws out.
 * The handlers live beside this file, one per command type: cmd-report-now.ts, cmd-set-mode.ts,
 * cmd-write-point.ts.
 */

export type CommandHandler = (cmd: Command) => Promise<{ message?: string } | void>;

export interface CommandRouterOptions {
  handlers: Record<string, CommandHandler>;
  now: () => number;
  logger: Logger;
  /** Larger payloads are ignored unread; default 64 KiB. */
  maxBytes?: number;
}

export interface CommandRouter {
  /** The acknowledgement to publish, or undefined when the payload cannot be acknowledged. */
  handle(payload: Buffer | string): Promise<CommandAck | undefined>;
}

export function createCommandRouter(opts: CommandRouterOptions): CommandRouter {
  const { handlers, now, logger: log } = opts;
  const maxBytes = opts.maxBytes ?? COMMAND_MAX_BYTES;
  const ts = () => new Date(now()).toISOString();
  const ack = (id: string, outcome: CommandAck['outcome'], message?: string): CommandAck =>
    (message === undefined ? { id, outcome, ts: ts() } : { id, outcome, message, ts: ts() });

  return {
    async handle(payload) {
      const size = typeof payload === 'string' ? Buffer.byteLength(payload) : payload.length;
      if (size > maxBytes) {
        log.warn({ size, maxBytes }, 'command ignored: payload too large');
        return undefined;
      }
      let raw: unknown;
      try {
        raw = JSON.parse(payload.toString());
      } catch (err) {
        log.warn({ err: (err as Error).message }, 'command ignored: payload is not JSON');
        return undefined;
      }
      const result = check(Command, raw, { owned: true });
      if (!result.ok) {
        const id = (raw as { id?: unknown } | null)?.id;
        const why = result.problems.map((p) => `${p.key}: ${p.message}`).join('; ');
        if (typeof id === 'string' && id.length > 0 && id.length <= 64) return ack(id, 'rejected', `invalid command: ${why}`);
        log.warn({ problems: result.problems }, 'command ignored: no id to acknowledge');
        return undefined;
      }
      const cmd = result.value;
      if (cmd.expires !== undefined && Date.parse(cmd.expires) <= now()) {
        return ack(cmd.id, 'rejected', `expired at ${cmd.expires}`);
      }
      if (!Object.hasOwn(handlers, cmd.type)) {
        return ack(cmd.id, 'rejected', `unknown command type "${cmd.type}" (known: ${Object.keys(handlers).join(', ')})`);
      }
      try {
        const out = await handlers[cmd.type](cmd);
        return ack(cmd.id, 'ok', out?.message);
      } catch (err) {
        const refused = (err as { code?: string }).code === EdgeErrors.CMD_REJECTED;
        log.warn({ id: cmd.id, type: cmd.type, err: (err as Error).message }, refused ? 'command rejected' : 'command failed');
        return ack(cmd.id, refused ? 'rejected' : 'failed', (err as Error).message);
      }
    },
  };
}

/** A command's arguments checked against `schema`; a mismatch is a CMD_REJECTED naming each key. */
export function commandArgs<T extends TSchema>(schema: T, cmd: unknown): Static<T> {
  const r = check(schema, cmd);
  if (!r.ok) throw new CsError(EdgeErrors.CMD_REJECTED, `invalid arguments: ${r.problems.map((p) => `${p.key}: ${p.message}`).join('; ')}`);
  return r.value;
}
