import type { FastifyReply } from 'fastify';
import { XMLBuilder } from 'fast-xml-parser';

/**
 * GeoReport v2 bodies (wiki.open311.org/GeoReport_v2): the format is the path's suffix, `.json`
 * (an array, or the service definition's object) or `.xml` (schemaless, UTF-8, with the XML
 * declaration). Errors are `[{ code, description }]` or `<errors><error><code/><description/></error></errors>`,
 * with 404 for what does not exist, 403 for a missing or invalid api_key and 400 for the rest.
 */

export type Format = 'json' | 'xml';

/** An error the Open311 routes answer in the spec's format (never the REST API's error body). */
export class Open311Error extends Error {
  constructor(readonly status: 400 | 403 | 404 | 413 | 415 | 429 | 500 | 503, message: string) {
    super(message);
  }
}

const builder = new XMLBuilder({ format: true, suppressBooleanAttributes: false });
const XML_DECL = '<?xml version="1.0" encoding="utf-8"?>\n';

/** `name.json` / `name.xml` -> [name, format]; undefined for another suffix. */
export function splitFormat(file: string): [string, Format] | undefined {
  const m = /^(.+)\.(json|xml)$/.exec(file);
  return m ? [m[1], m[2] as Format] : undefined;
}

/** The format a URL asks for (errors before routing use it too): XML for `.xml`, JSON otherwise. */
export function formatOfUrl(url: string): Format {
  return /\.xml$/i.test(url.split('?')[0]) ? 'xml' : 'json';
}

/** A list: a JSON array, or `<root><item>...</item>...</root>`. */
export function sendList(reply: FastifyReply, format: Format, root: string, item: string, items: object[], status = 200): FastifyReply {
  if (format === 'json') return reply.code(status).type('application/json; charset=utf-8').send(JSON.stringify(items));
  return reply.code(status).type('text/xml; charset=utf-8').send(XML_DECL + builder.build({ [root]: items.length ? { [item]: items } : '' }));
}

/** One object: JSON as is, XML under `root` (nested lists given as `{ list: { item: [...] } }` by `xml`). */
export function sendObject(reply: FastifyReply, format: Format, root: string, json: object, xml: object): FastifyReply {
  if (format === 'json') return reply.type('application/json; charset=utf-8').send(JSON.stringify(json));
  return reply.type('text/xml; charset=utf-8').send(XML_DECL + builder.build({ [root]: xml }));
}

export function sendErrors(reply: FastifyReply, format: Format, status: number, descriptions: string[]): FastifyReply {
  return sendList(reply, format, 'errors', 'error', descriptions.map((description) => ({ code: status, description })), status);
}
