import type { FastifyError, FastifyInstance, FastifyRequest } from 'fastify';
import { Type } from '@sinclair/typebox';
import type { Logger } from '../../lib/log.ts';
import { tokenBucket, type TokenBucket } from '../../lib/rate-limit.ts';
import { CsError } from '../../lib/errors.ts';
import { statusOf } from '../errors.ts';
import type { KeyStore } from './keys.ts';
import { formatOfUrl, Open311Error, sendErrors, sendList, sendObject, splitFormat, type Format } from './format.ts';
import { parseNewRequest, parseRequestQuery, type FieldSource } from './parse.ts';
import { requestJson, type ReportStore } from './reports.ts';
import { langOf, serviceJson, type Lang, type ServiceCatalogue } from './services.ts';

/**
 * Open311 GeoReport v2 under `/open311/v2` (README "Open311"): public by design, as the spec has it —
 * anyone may list the services and read the requests (no contact details are ever shown); posting a
 * request needs a client app's `api_key` (403 without a valid one). Bodies and errors are the spec's,
 * in JSON or XML by the path's suffix; POST takes application/x-www-form-urlencoded (the spec) or JSON.
 */

export interface Open311Deps {
  reports: ReportStore;
  keys: KeyStore;
  services: ServiceCatalogue;
  unitName(id: string): string;
  now: () => number;
  logger: Logger;
  /** Requests per second and burst per client address (these routes have no credential to count); 0: off. */
  rate?: { requestsPerSecond: number; burst: number };
  /** Real elapsed time for the rate limit. */
  clock?: () => number;
}

/** Addresses with a bucket at most; the oldest goes first. */
const MAX_BUCKETS = 10_000;

const PREFIX = '/open311/v2';
const FORMATS = ['json', 'xml'] as const;
const TAGS = ['open311'];
const NOTICE: Record<Lang, string> = {
  zh: '已收到，等待城市管理指挥中心受理',
  en: 'received; awaiting acceptance by the city management command centre',
};

const RequestQuery = Type.Object({
  service_request_id: Type.Optional(Type.String({ description: 'comma-separated ids; overrides the other filters' })),
  service_code: Type.Optional(Type.String({ description: 'comma-separated service codes' })),
  start_date: Type.Optional(Type.String({ description: 'earliest requested_datetime (ISO 8601 with a zone); default: 90 days before end_date' })),
  end_date: Type.Optional(Type.String({ description: 'latest requested_datetime; default now; at most 90 days after start_date' })),
  status: Type.Optional(Type.String({ description: 'open, closed or open,closed' })),
  jurisdiction_id: Type.Optional(Type.String({ description: 'ignored: one jurisdiction' })),
});
const FileParam = Type.Object({ file: Type.String({ description: 'the id and the format: `{id}.json` or `{id}.xml`' }) });

/** Registers the Open311 routes in their own scope: its body parser and its error format. */
export async function open311Routes(app: FastifyInstance, deps: Open311Deps): Promise<void> {
  const { reports, services } = deps;
  // The spec's body: form-urlencoded (repeated keys keep the first; attribute[...] is accepted and ignored).
  app.addContentTypeParser('application/x-www-form-urlencoded', { parseAs: 'string' }, (_req, body, done) => {
    const out: Record<string, string> = Object.create(null);
    for (const [k, v] of new URLSearchParams(body as string)) if (!(k in out)) out[k] = v;
    done(null, out);
  });
  app.setErrorHandler((err: FastifyError | Open311Error, req, reply) => {
    const format = formatOfUrl(req.url);
    if (err instanceof Open311Error) return sendErrors(reply, format, err.status, [err.message]);
    // Our own errors (e.g. the finite-number check's 400) carry a code, not a status.
    const status = err instanceof CsError ? statusOf(err.code) : typeof (err as FastifyError).statusCode === 'number' ? (err as FastifyError).statusCode! : 500;
    if (status >= 500) {
      // The path only: a query string may hold what a client should not have put there (an api_key).
      deps.logger.error({ err, url: req.url.split('?')[0] }, 'open311 request failed');
      return sendErrors(reply, format, 500, ['internal error; try again later']);
    }
    const described = (err as FastifyError).code === 'FST_ERR_CTP_INVALID_MEDIA_TYPE'
      ? 'send application/x-www-form-urlencoded or application/json' : err.message;
    return sendErrors(reply, format, status, [described]);
  });

  const rate = deps.rate;
  if (rate && rate.requestsPerSecond > 0) {
    const buckets = new Map<string, TokenBucket>();
    const clock = deps.clock ?? (() => performance.now());
    app.addHook('onRequest', async (req, reply) => {
      let b = buckets.get(req.ip);
      if (!b) {
        b = tokenBucket({ ratePerSecond: rate.requestsPerSecond, burst: Math.max(1, rate.burst), now: clock });
        buckets.set(req.ip, b);
        if (buckets.size > MAX_BUCKETS) buckets.delete(buckets.keys().next().value!);
      }
      if (!b.tryTake()) {
        reply.header('retry-after', String(Math.max(1, Math.ceil(1 / rate.requestsPerSecond))));
        throw new Open311Error(429, `more than ${rate.requestsPerSecond} requests per second (burst ${rate.burst}) from this address; slow down`);
      }
    });
  }

  const lang = (req: FastifyRequest): Lang => langOf(req.headers['accept-language']);
  const fileOf = (file: string): [string, Format] => {
    const f = splitFormat(file);
    if (!f) throw new Open311Error(404, `no such resource ${file}: ask for {id}.json or {id}.xml`);
    return f;
  };

  for (const format of FORMATS) {
    app.get(`${PREFIX}/services.${format}`, {
      config: { public: true },
      schema: { summary: `Open311: the services (the case categories), ${format.toUpperCase()}`, tags: TAGS, security: [] },
    }, async (req, reply) => sendList(reply, format, 'services', 'service', services.list().map((s) => serviceJson(s, lang(req)))));

    app.get(`${PREFIX}/requests.${format}`, {
      config: { public: true },
      schema: { summary: `Open311: service requests, newest first (at most 1000, 90 days), ${format.toUpperCase()}`, tags: TAGS, security: [], querystring: RequestQuery },
    }, async (req, reply) => {
      const q = parseRequestQuery(req.query as FieldSource, deps.now());
      const all = q.ids ? {} : { serviceCodes: q.serviceCodes, from: q.from, to: q.to, statuses: q.statuses };
      const rows = await reports.load({ ids: q.ids, ...all, limit: 1000 });
      const items = rows.map((r) => requestJson(r, services, deps.unitName, lang(req)));
      return sendList(reply, format, 'service_requests', 'request', items);
    });

    app.post(`${PREFIX}/requests.${format}`, {
      config: { public: true },
      schema: {
        summary: `Open311: post a service request (a citizen report; needs api_key), ${format.toUpperCase()}`,
        description: 'Form-urlencoded (the spec) or JSON: api_key, service_code, lat+long or address_string or address_id, description, media_url, email, phone, first_name, last_name, account_id, device_id. The report waits for an operator to accept it (受理).',
        tags: TAGS, security: [], consumes: ['application/x-www-form-urlencoded', 'application/json'],
      },
    }, async (req, reply) => {
      if (req.body != null && (typeof req.body !== 'object' || Array.isArray(req.body))) throw new Open311Error(400, 'the body must be form fields (application/x-www-form-urlencoded) or a JSON object');
      const body = (req.body ?? {}) as FieldSource;
      // From the body only (the spec's POST): a query string lands in request logs.
      const key = str(body.api_key);
      if (!key) throw new Open311Error(403, 'api_key missing: client apps get one from the city (citysteward open311-key create)');
      const keyId = await deps.keys.verify(key);
      if (!keyId) throw new Open311Error(403, 'api_key invalid or revoked');
      const input = parseNewRequest(body);
      if (!services.get(input.serviceCode)) throw new Open311Error(404, `service_code ${input.serviceCode} not found (GET ${PREFIX}/services.${format})`);
      const id = await reports.create(input, keyId);
      return sendList(reply, format, 'service_requests', 'request', [{ service_request_id: id, service_notice: NOTICE[lang(req)], account_id: input.contact.account_id ?? null }]);
    });
  }

  app.get(`${PREFIX}/services/:file`, {
    config: { public: true },
    schema: { summary: 'Open311: a service definition (`{code}.json` or `{code}.xml`); no extra attributes are asked', tags: TAGS, security: [], params: FileParam },
  }, async (req, reply) => {
    const [code, format] = fileOf((req.params as { file: string }).file);
    if (!services.get(code)) throw new Open311Error(404, `service_code ${code} not found`);
    return sendObject(reply, format, 'service_definition', { service_code: code, attributes: [] }, { service_code: code, attributes: '' });
  });

  app.get(`${PREFIX}/requests/:file`, {
    config: { public: true },
    schema: { summary: 'Open311: one service request (`{id}.json` or `{id}.xml`)', tags: TAGS, security: [], params: FileParam },
  }, async (req, reply) => {
    const [id, format] = fileOf((req.params as { file: string }).file);
    const r = await reports.get(id);
    if (!r) throw new Open311Error(404, `service_request_id ${id} not found`);
    return sendList(reply, format, 'service_requests', 'request', [requestJson(r, services, deps.unitName, lang(req))]);
  });
}

function str(v: unknown): string | undefined {
  return typeof v === 'string' && v.trim() ? v.trim() : undefined;
}
