import { createRequire } from 'node:module';
import pino, { type DestinationStream, type Logger, type LoggerOptions } from 'pino';
import type PinoPretty from 'pino-pretty';

export type { Logger };

/** Paths that must never reach a log line (secrets never logged). */
export const REDACT = [
  'password', '*.password', '*.*.password', 'token', '*.token', 'secret', '*.secret',
  'authorization', '*.authorization', 'req.headers.authorization', 'headers.authorization',
  'cookie', '*.cookie', 'req.headers.cookie', 'headers.cookie', 'res.headers["set-cookie"]', 'headers["set-cookie"]',
  'body.password', 'req.body.password',
];

/**
 * Binding keys, one meaning each, so that no line carries a key twice (pino concatenates child
 * bindings): `name` is the process (cloud, gateway, edge, sim, demo), `svc` a service inside the
 * demo's single process, `mod` a module inside a service, and `gateway`, `device`, `caseId` the ids.
 */
export type LogFormat = 'json' | 'pretty';

/**
 * Human-readable lines when the console is a terminal, JSON lines otherwise (pino-pretty, pino's
 * own way); `CS_LOG_FORMAT=json|pretty` decides explicitly.
 */
export function logFormat(env: NodeJS.ProcessEnv = process.env, isTTY = Boolean(process.stdout.isTTY)): LogFormat {
  const f = env.CS_LOG_FORMAT;
  if (f === 'json' || f === 'pretty') return f;
  return isTTY ? 'pretty' : 'json';
}

/** A pino-pretty stream written synchronously, so that the last lines before an exit are not lost. */
export function prettyStream(destination: NodeJS.WritableStream | number = 1, colorize = Boolean(process.stdout.isTTY)): DestinationStream {
  // Loaded when asked for: a service whose lines are JSON (every one in production) never holds it (about 1 MiB).
  const pretty = createRequire(import.meta.url)('pino-pretty') as typeof PinoPretty;
  return pretty({
    destination, sync: true, colorize, translateTime: 'SYS:HH:MM:ss.l', ignore: 'pid,hostname,name,svc,mod,gateway,device',
    messageFormat: '{if name}{name}{end}{if svc}/{svc}{end}{if mod}/{mod}{end}{if gateway} [{gateway}]{end}{if device} {device}{end}: {msg}',
    hideObject: false,
  });
}

/** One pino logger per process; services take a child bound to their name. */
export function createLogger(opts: LoggerOptions = {}, format: LogFormat = logFormat(), destination?: DestinationStream): Logger {
  const options: LoggerOptions = {
    level: process.env.CS_LOG_LEVEL ?? 'info',
    redact: { paths: REDACT, censor: '[redacted]' },
    ...opts,
  };
  if (destination) return pino(options, destination);
  return format === 'pretty' ? pino(options, prettyStream()) : pino(options);
}

/** A logger that writes nothing: the default for factories built in tests. */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}

/**
 * `logger.child(bindings)`, made on first use: a message path that logs nothing (the common case)
 * does not pay for the child (pino serialises its bindings at creation).
 */
export function lazyChild(logger: Logger, bindings: Record<string, unknown>): Logger {
  let real: Logger | undefined;
  return new Proxy({} as Logger, {
    get(_, key) {
      real ??= logger.child(bindings);
      const v = (real as unknown as Record<string | symbol, unknown>)[key];
      return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(real) : v;
    },
    set(_, key, value) {
      real ??= logger.child(bindings);
      (real as unknown as Record<string | symbol, unknown>)[key] = value;
      return true;
    },
  });
}
