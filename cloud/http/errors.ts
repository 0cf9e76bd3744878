import { STATUS_CODES } from 'node:http';
import type { Socket } from 'node:net';
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Logger } from '../../lib/log.ts';
import { CsError } from '../../lib/errors.ts';
import { CloudErrors, statusOf } from '../errors.ts';
import { formatOfUrl, sendErrors } from '../open311/format.ts';

/** The documented error body (README "Error bodies"): every 4xx and 5xx, Fastify's and Node's own included. */
export interface ErrorBody {
  statusCode: number;
  code: string;
  error: string;
  message: string;
}

export function errorBody(statusCode: number, code: string, message: string): ErrorBody {
  return { statusCode, code, error: STATUS_CODES[statusCode] ?? 'Error', message };
}

/** Fastify's own error codes, answered with ours (and a message that says what to fix). */
const FASTIFY_CODES: Record<string, { code: string; message?: string }> = {
  FST_ERR_BAD_URL: { code: CloudErrors.BAD_URL, message: 'the path is not valid URL encoding' },
  FST_ERR_MAX_PARAM_LENGTH: { code: CloudErrors.BAD_URL, message: 'a path parameter is too long' },
  FST_ERR_CTP_INVALID_JSON_BODY: { code: CloudErrors.BAD_JSON, message: 'the body is not valid JSON, or holds a __proto__ or constructor.prototype key' },
  FST_ERR_CTP_EMPTY_JSON_BODY: { code: CloudErrors.BAD_JSON, message: 'the body is empty but content-type is application/json' },
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: { code: CloudErrors.BAD_CONTENT_LENGTH, message: 'the body size does not match its Content-Length' },
  FST_ERR_CTP_BODY_TOO_LARGE: { code: CloudErrors.BODY_TOO_LARGE },
  FST_ERR_CTP_INVALID_MEDIA_TYPE: { code: CloudErrors.UNSUPPORTED_MEDIA_TYPE },
};

/** Our code and message for any error a request can raise; 5xx messages never leave the process. */
export function toErrorBody(err: FastifyError | CsError | Error): ErrorBody {
  const fe = err as FastifyError;
  if (fe.validation) return errorBody(400, CloudErrors.VALIDATION, describeValidation(fe));
  if (err instanceof CsError) return errorBody(statusOf(err.code), err.code, err.message);
  const status = typeof fe.statusCode === 'number' ? fe.statusCode : 500;
  if (status >= 400 && status < 500) {
    const known = fe.code ? FASTIFY_CODES[fe.code] : undefined;
    if (fe.code === 'FST_ERR_CTP_INVALID_MEDIA_TYPE') return errorBody(status, known!.code, `${err.message}; send application/json`);
    return errorBody(status, known?.code ?? CloudErrors.BAD_REQUEST, known?.message ?? err.message);
  }
  if (status === 503) return errorBody(503, CloudErrors.DB_UNAVAILABLE, 'service temporarily unavailable');
  return errorBody(status >= 500 && status < 600 ? status : 500, CloudErrors.INTERNAL, 'internal server error');
}

/**
 * The central error handler: every error answers `{ statusCode, code, error, message }` with a
 * stable code; validation errors name the parameter; 5xx details are logged, never answered.
 */
export function installErrorHandling(app: FastifyInstance, log: Logger): void {
  app.setErrorHandler((err: FastifyError | CsError | Error, req, reply) => {
    const body = toErrorBody(err);
    if (body.statusCode >= 500) log.error({ err, url: req.url, method: req.method, code: body.code }, 'request failed');
    if (body.statusCode === 401) reply.header('www-authenticate', 'Bearer');
    return answer(req, reply, body);
  });

  app.setNotFoundHandler((req, reply) => answer(req, reply, errorBody(404, CloudErrors.ROUTE_NOT_FOUND, `no route ${req.method} ${req.url.split('?')[0]}`)));
}

/** The error body, or under /open311/ the GeoReport v2 errors (cloud/open311/format.ts) with the same status. */
function answer(req: FastifyRequest, reply: FastifyReply, body: ErrorBody): FastifyReply {
  if (req.url.startsWith('/open311/')) return sendErrors(reply, formatOfUrl(req.url), body.statusCode, [body.message]);
  return reply.code(body.statusCode).send(body);
}

/** Fastify's `frameworkErrors` option: errors raised before routing (a path like `/api/%ZZ`). */
export function frameworkErrors(err: FastifyError, _req: FastifyRequest, reply: FastifyReply): void {
  void answer(_req, reply, toErrorBody(err));
}

/**
 * Fastify's `clientErrorHandler` option: requests Node's HTTP parser refuses (a malformed request
 * line, a bad Content-Length, headers too large, the request timeout) answer our body too.
 */
export function clientErrorHandler(log: Logger) {
  return (err: NodeJS.ErrnoException, socket: Socket): void => {
    if (err.code === 'ECONNRESET' || socket.destroyed) return;
    const body = err.code === 'ERR_HTTP_REQUEST_TIMEOUT'
      ? errorBody(408, CloudErrors.REQUEST_TIMEOUT, 'the request was not received in full within the request timeout')
      : err.code === 'HPE_HEADER_OVERFLOW'
        ? errorBody(431, CloudErrors.HEADERS_TOO_LARGE, 'the request headers are too large')
        : errorBody(400, CloudErrors.BAD_REQUEST, `malformed HTTP request (${err.code ?? 'parse error'})`);
    log.debug({ code: err.code, status: body.statusCode }, 'client error');
    if (socket.writable) {
      const json = JSON.stringify(body);
      socket.write(`HTTP/1.1 ${body.statusCode} ${body.error}\r\nContent-Type: application/json; charset=utf-8\r\nContent-Length: ${Buffer.byteLength(json)}\r\nConnection: close\r\n\r\n${json}`);
    }
    socket.destroy(); // as Node does (http server, socketOnError): the answer is written synchronously first
  };
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
