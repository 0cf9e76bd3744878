/**
 * Base error of CitySteward. Every package keeps one registry of its codes
 * (devices/errors.ts, edge/errors.ts, gateway/errors.ts, cloud/errors.ts, lib here)
 * so a code is stable, greppable and documented in one place.
 */
export class CsError extends Error {
  readonly code: string;
  readonly details?: Record<string, unknown>;

  constructor(code: string, message: string, details?: Record<string, unknown>) {
    super(message);
    this.name = 'CsError';
    this.code = code;
    this.details = details;
  }
}

/** Codes of the shared library. */
export const LibErrors = {
  CONFIG_READ: 'CS_CONFIG_READ',
  CONFIG_YAML: 'CS_CONFIG_YAML',
  CONFIG_INVALID: 'CS_CONFIG_INVALID',
  READING_INVALID: 'CS_READING_INVALID',
  TOPIC_INVALID: 'CS_TOPIC_INVALID',
} as const;
