import type { FastifyInstance } from 'fastify';
import { CsError } from '../../lib/errors.ts';
import { CloudErrors } from '../errors.ts';

/**
 * Ajv coerces `limit=Infinity` (and `1e309`) to Infinity, then skips `minimum`/`maximum` for a
 * number that is not finite, so the schemas' bounds alone let it through (to a 500 from SQLite).
 * After validation, any non-finite number left in the query, path or body is refused here with
 * the schema's own error: 400 CS_CLOUD_VALIDATION naming the parameter.
 */
export function installFiniteCheck(app: FastifyInstance): void {
  app.addHook('preHandler', async (req) => {
    const parts: [string, unknown][] = [['query parameter', req.query], ['path parameter', req.params], ['body field', req.body]];
    for (const [kind, value] of parts) {
      const at = nonFinite(value, '', 0);
      if (at !== undefined) throw new CsError(CloudErrors.VALIDATION, `${kind} "${at}" must be a finite number`);
    }
  });
}

/** The dotted path of the first non-finite number in a parsed value (depth-bounded), or undefined. */
function nonFinite(v: unknown, path: string, depth: number): string | undefined {
  if (typeof v === 'number') return Number.isFinite(v) ? undefined : path || '(value)';
  if (v === null || typeof v !== 'object' || depth > 32) return undefined;
  for (const [k, x] of Object.entries(v)) {
    const r = nonFinite(x, path ? `${path}.${k}` : k, depth + 1);
    if (r !== undefined) return r;
  }
  return undefined;
}
