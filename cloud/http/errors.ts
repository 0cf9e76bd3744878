import { STATUS_CODES } from 'node:http';
import type { FastifyError, FastifyInstance } from 'fastify';
import type { Logger } from '../../lib/log.ts';
import { CsError } from '../../lib/errors.ts';
import { CloudErrors, statusOf } from '../errors.ts';

/**
 * The central error handler: every error answers `{ statusCode, code, error, message }` with a
 * stable code; validation errors name the parameter; 5xx details are logged, never answered.
 */
export function installErrorHandling(app: FastifyInstance, log: Logger): void {
  app.setErrorHandler((err: FastifyError | CsError | Error, req, reply) => {
    let statusCode: number;
    let code: string;
    let message: string;
    const fe = err as FastifyError;
    if (fe.validation) {
      statusCode = 400;
      code = CloudErrors.VALIDATION;
      message = describeValidation(fe);
    } else if (err instanceof CsError) {
      statusCode = statusOf(err.code);
      code = err.code;
      message = err.message;
    } else if (typeof fe.statusCode === 'number' && fe.statusCode >= 400 && fe.statusCode < 500) {
      statusCode = fe.statusCode;
      code = CloudErrors.BAD_REQUEST;
      message = err.message;
    } else {
      statusCode = 500;
      code = CloudErrors.INTERNAL;
      message = err.message;
    }
    if (statusCode >= 500) {
      log.error({ err, url: req.url, method: req.method, code }, 'request failed');
      message = statusCode === 503 ? 'service temporarily unavailable' : 'internal server error';
    }
    if (statusCode === 401) reply.header('www-authenticate', 'Bearer');
    return reply.code(statusCode).send({ statusCode, code, error: STATUS_CODES[statusCode] ?? 'Error', message });
  });

  app.setNotFoundHandler((req, reply) => reply.code(404).send({
    statusCode: 404, code: CloudErrors.ROUTE_NOT_FOUND, error: 'Not Found', message: `no route ${req.method} ${req.url.split('?')[0]}`,
  }));
}

function describeValidation(err: FastifyError): string {
  const v = err.validation?.[0];
  if (!v) return err.message;
  const where = err.validationContext ?? 'request';
  const missing = (v.params as { missingProperty?: string } | undefined)?.missingProperty;
  const extra = (v.params as { additionalProperty?: string } | undefined)?.additionalProperty;
  const param = missing ?? extra ?? v.instancePath.replace(/^\//, '').replace(/\//g, '.');
  const kind = where === 'querystring' ? 'query parameter' : where === 'params' ? 'path parameter' : where === 'body' ? 'body field' : `${where} field`;
  if (!param) return `invalid ${where}: ${v.message}`;
  if (extra) return `unknown ${kind} "${param}"`;
  if (missing) return `${kind} "${param}" is required`;
  let msg = `${kind} "${param}" ${v.message}`;
  const allowed = (v.params as { allowedValues?: unknown[] } | undefined)?.allowedValues;
  if (Array.isArray(allowed)) msg = `${kind} "${param}" must be one of ${allowed.join(', ')}`;
  if ((v.params as { format?: string } | undefined)?.format === 'date-time') {
    msg = `${kind} "${param}" must be an ISO 8601 date-time with a zone, e.g. 2026-09-14T06:00:00Z`;
  }
  return msg;
}
