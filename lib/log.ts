import pino, { type Logger, type LoggerOptions } from 'pino';

export type { Logger };

/** Paths that must never reach a log line (secrets never logged). */
export const REDACT = [
  'password', '*.password', '*.*.password', 'token', '*.token', 'secret', '*.secret',
  'authorization', '*.authorization', 'req.headers.authorization', 'headers.authorization',
];

/** One pino logger per process; services take a child bound to their name. */
export function createLogger(opts: LoggerOptions = {}): Logger {
  return pino({
    level: process.env.CS_LOG_LEVEL ?? 'info',
    redact: { paths: REDACT, censor: '[redacted]' },
    ...opts,
  });
}

/** A logger that writes nothing: the default for factories built in tests. */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}
