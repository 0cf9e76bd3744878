
/**
 * Error codes of cloud/: stable, greppable, answered by the REST API as
 * `{ statusCode, code, error, message }`. `CloudErrorStatus` gives each code its HTTP status.
 */
import { EmergencyErrors } from './emergency/errors.ts';

export const CloudErrors = {
  /** No `Authorization: Bearer TOKEN` header. */
  AUTH_MISSING: 'CS_CLOUD_AUTH_MISSING',
  /** A token that is malformed, unknown or revoked. */
  AUTH_INVALID: 'CS_CLOUD_AUTH_INVALID',
  /** Sign-in refused: unknown user, wrong password or disabled account (one answer for all three). */
  SIGNIN_FAILED: 'CS_CLOUD_SIGNIN_FAILED',
  /** Too many failed sign-ins for this account or from this address; Retry-After says when to try again. */
  SIGNIN_THROTTLED: 'CS_CLOUD_SIGNIN_THROTTLED',
  /** A cookie-authenticated unsafe request (not GET/HEAD) that is not same-origin. */
  CSRF: 'CS_CLOUD_CSRF',
  /** One credential (token or session) over its request rate; Retry-After says when to try again. */
  RATE_LIMITED: 'CS_CLOUD_RATE_LIMITED',
  /** A user name, role/unit or password that cannot be used (user create, passwd). */
  USER_INVALID: 'CS_CLOUD_USER_INVALID',
  USER_EXISTS: 'CS_CLOUD_USER_EXISTS',
  USER_NOT_FOUND: 'CS_CLOUD_USER_NOT_FOUND',
  /** The token's role may not do this. */
  FORBIDDEN: 'CS_CLOUD_FORBIDDEN',
  /** A request that fails its schema (body, query, params, headers). */
  VALIDATION: 'CS_CLOUD_VALIDATION',
  /** A query that passes the schema but not the meaning (e.g. `from` after `to`). */
  BAD_QUERY: 'CS_CLOUD_BAD_QUERY',
  BAD_CURSOR: 'CS_CLOUD_BAD_CURSOR',
  DEVICE_NOT_FOUND: 'CS_CLOUD_DEVICE_NOT_FOUND',
  /** Also answered for a case of another unit asked by a crew token (existence is not revealed). */
  CASE_NOT_FOUND: 'CS_CLOUD_CASE_NOT_FOUND',
  ROUTE_NOT_FOUND: 'CS_CLOUD_ROUTE_NOT_FOUND',
  /** Other 4xx raised by Fastify or Node itself (a malformed HTTP request...). */
  BAD_REQUEST: 'CS_CLOUD_BAD_REQUEST',
  /** A path that is not valid URL encoding (`%ZZ`) or a path parameter over the length limit. */
  BAD_URL: 'CS_CLOUD_BAD_URL',
  /** A JSON body that does not parse, is empty, or holds a `__proto__` / `constructor.prototype` key. */
  BAD_JSON: 'CS_CLOUD_BAD_JSON',
  /** A body whose size does not match its Content-Length. */
  BAD_CONTENT_LENGTH: 'CS_CLOUD_BAD_CONTENT_LENGTH',
  BODY_TOO_LARGE: 'CS_CLOUD_BODY_TOO_LARGE',
  UNSUPPORTED_MEDIA_TYPE: 'CS_CLOUD_UNSUPPORTED_MEDIA_TYPE',
  /** Request headers over Node's size limit. */
  HEADERS_TOO_LARGE: 'CS_CLOUD_HEADERS_TOO_LARGE',
  /** A request not received in full within the request timeout. */
  REQUEST_TIMEOUT: 'CS_CLOUD_REQUEST_TIMEOUT',
  /** More live event streams (`GET /api/events`) on one token than the cap allows. */
  TOO_MANY_STREAMS: 'CS_CLOUD_TOO_MANY_STREAMS',
  INTERNAL: 'CS_CLOUD_INTERNAL',
  /** Token creation with a bad role/unit combination. */
  TOKEN_INVALID: 'CS_CLOUD_TOKEN_INVALID',
  DB_UNAVAILABLE: 'CS_CLOUD_DB_UNAVAILABLE',
  MIGRATION_FAILED: 'CS_CLOUD_MIGRATION_FAILED',
  MQTT_CONNECT: 'CS_CLOUD_MQTT_CONNECT',
  CASE_UPSERT_FAILED: 'CS_CLOUD_CASE_UPSERT_FAILED',
  /** A reading's key was already stored, yet its row could not be read back (the batch fails and is retried). */
  READING_STORE_FAILED: 'CS_CLOUD_READING_STORE_FAILED',
  /** An action the case's current state does not allow (the message names both). */
  CASE_ILLEGAL_ACTION: 'CS_CLOUD_CASE_ILLEGAL_ACTION',
  /** Verification refused: the asset's readings are out of range, or back in range for too short a time. */
  CASE_SENSOR_NOT_CLEAR: 'CS_CLOUD_CASE_SENSOR_NOT_CLEAR',
  /** Reopening would make a second open case for the same asset and hazard. */
  CASE_ALREADY_OPEN: 'CS_CLOUD_CASE_ALREADY_OPEN',
  /** An action body that passes the schema but not the meaning (e.g. an extension to an earlier deadline). */
  CASE_BAD_ACTION: 'CS_CLOUD_CASE_BAD_ACTION',
  ALARM_NOT_FOUND: 'CS_CLOUD_ALARM_NOT_FOUND',
  /** An action id already used for another case or action (a resend of the same action is answered, not refused). */
  ACTION_ID_REUSED: 'CS_CLOUD_ACTION_ID_REUSED',
  /** A photo over the size limit (10 MB each). */
  PHOTO_TOO_LARGE: 'CS_CLOUD_PHOTO_TOO_LARGE',
  /** A photo whose bytes are not JPEG, PNG or WebP (whatever its name or declared type says). */
  PHOTO_TYPE: 'CS_CLOUD_PHOTO_TYPE',
  /** No such photo, or none the caller may see (a crew: only photos of its unit's cases). */
  PHOTO_NOT_FOUND: 'CS_CLOUD_PHOTO_NOT_FOUND',
  /** A photo upload without files (multipart field `photo`). */
  PHOTO_MISSING: 'CS_CLOUD_PHOTO_MISSING',
  /** This cloud has no photo directory (PostgreSQL without `photosDir`). */
  PHOTOS_UNAVAILABLE: 'CS_CLOUD_PHOTOS_UNAVAILABLE',
  /** A photo upload to a closed or void case (its record is final: docs/domain.md#the-case). */
  PHOTO_CASE_FINAL: 'CS_CLOUD_PHOTO_CASE_FINAL',
  /** The public ranking asked for while an admin has not turned it on (cloud/evaluation/public-routes.ts). */
  RANKING_NOT_PUBLISHED: 'CS_CLOUD_RANKING_NOT_PUBLISHED',
  /** No citizen report by that id (cloud/open311/reports.ts). */
  REPORT_NOT_FOUND: 'CS_CLOUD_REPORT_NOT_FOUND',
  /** A citizen report accepted or refused already (the message says which). */
  REPORT_DECIDED: 'CS_CLOUD_REPORT_DECIDED',
  CALENDAR_INVALID: 'CS_CLOUD_CALENDAR_INVALID',
  RULES_INVALID: 'CS_CLOUD_RULES_INVALID',
  /** A setting of the cloud's options out of bounds (e.g. `retention`). */
  CONFIG_INVALID: 'CS_CLOUD_CONFIG_INVALID',
  /** The category catalogue file does not parse or fails its schema or checks (names the key). */
  CATALOGUE_INVALID: 'CS_CLOUD_CATALOGUE_INVALID',
  /** A configuration change refused whole: its `problems` name each key and what is wrong (nothing applied). */
  CONFIG_REFUSED: 'CS_CLOUD_CONFIG_REFUSED',
  /** A configuration change based on a version that is no longer current (`baseVersion`): read it again. */
  CONFIG_STALE: 'CS_CLOUD_CONFIG_STALE',
  /** A person's case names a category code the catalogue does not hold. */
  CATEGORY_UNKNOWN: 'CS_CLOUD_CATEGORY_UNKNOWN',
  /** A person's case that passes the schema but not the meaning (coordinates, asset, photos, source, self-correction). */
  CASE_BAD_INPUT: 'CS_CLOUD_CASE_BAD_INPUT',
  /** A gateway's broker credential could not be made or revoked: the brokers' admin API unreachable or refusing (nothing was created). */
  PROVISION_FAILED: 'CS_CLOUD_PROVISION_FAILED',
  /** A gateway id whose broker credential was revoked before (a retired gateway's): ids are not reused. */
  PROVISION_ID_USED: 'CS_CLOUD_PROVISION_ID_USED',
  /** A registry change that breaks a reference or a rule (the message names the entity, its id, the field and the problem). */
  REGISTRY_INVALID: 'CS_CLOUD_REGISTRY_INVALID',
  /** No district, unit, gateway, bus or device by that id in the registry. */
  REGISTRY_NOT_FOUND: 'CS_CLOUD_REGISTRY_NOT_FOUND',
  /** Creating an id the registry holds already (retired ids stay taken: their history names them). */
  REGISTRY_EXISTS: 'CS_CLOUD_REGISTRY_EXISTS',
  /** Changing a retired entity. */
  REGISTRY_RETIRED: 'CS_CLOUD_REGISTRY_RETIRED',
  /** Another worker's change to the same slot came first, or the registry kept changing; try again. */
  REGISTRY_CONFLICT: 'CS_CLOUD_REGISTRY_CONFLICT',
  /** A bulk import refused whole: the message names the row (or feature), the column and the problem. */
  REGISTRY_IMPORT_INVALID: 'CS_CLOUD_REGISTRY_IMPORT_INVALID',
  /** The gateway was created but its provisioning (broker credential, edge config) failed. */
  REGISTRY_PROVISION_FAILED: 'CS_CLOUD_REGISTRY_PROVISION_FAILED',
  /** The registry holds a gateway the edge would refuse (e.g. a bus on port 0): its edge config names each key. */
  EDGE_CONFIG_INVALID: 'CS_CLOUD_EDGE_CONFIG_INVALID',
} as const;
export type CloudErrorCode = (typeof CloudErrors)[keyof typeof CloudErrors];

export const CloudErrorStatus: Record<CloudErrorCode, number> = {
  CS_CLOUD_AUTH_MISSING: 401,
  CS_CLOUD_AUTH_INVALID: 401,
  CS_CLOUD_FORBIDDEN: 403,
  CS_CLOUD_SIGNIN_FAILED: 401,
  CS_CLOUD_SIGNIN_THROTTLED: 429,
  CS_CLOUD_CSRF: 403,
  CS_CLOUD_RATE_LIMITED: 429,
  CS_CLOUD_USER_INVALID: 400,
  CS_CLOUD_USER_EXISTS: 409,
  CS_CLOUD_USER_NOT_FOUND: 404,
  CS_CLOUD_VALIDATION: 400,
  CS_CLOUD_BAD_QUERY: 400,
  CS_CLOUD_BAD_CURSOR: 400,
  CS_CLOUD_DEVICE_NOT_FOUND: 404,
  CS_CLOUD_CASE_NOT_FOUND: 404,
  CS_CLOUD_ROUTE_NOT_FOUND: 404,
  CS_CLOUD_BAD_REQUEST: 400,
  CS_CLOUD_BAD_URL: 400,
  CS_CLOUD_BAD_JSON: 400,
  CS_CLOUD_BAD_CONTENT_LENGTH: 400,
  CS_CLOUD_BODY_TOO_LARGE: 413,
  CS_CLOUD_UNSUPPORTED_MEDIA_TYPE: 415,
  CS_CLOUD_HEADERS_TOO_LARGE: 431,
  CS_CLOUD_REQUEST_TIMEOUT: 408,
  CS_CLOUD_TOO_MANY_STREAMS: 429,
  CS_CLOUD_INTERNAL: 500,
  CS_CLOUD_TOKEN_INVALID: 400,
  CS_CLOUD_DB_UNAVAILABLE: 503,
  CS_CLOUD_MIGRATION_FAILED: 500,
  CS_CLOUD_MQTT_CONNECT: 503,
  CS_CLOUD_CASE_UPSERT_FAILED: 500,
  CS_CLOUD_READING_STORE_FAILED: 500,
  CS_CLOUD_CASE_ILLEGAL_ACTION: 409,
  CS_CLOUD_CASE_SENSOR_NOT_CLEAR: 409,
  CS_CLOUD_CASE_ALREADY_OPEN: 409,
  CS_CLOUD_CASE_BAD_ACTION: 400,
  CS_CLOUD_ALARM_NOT_FOUND: 404,
  CS_CLOUD_ACTION_ID_REUSED: 409,
  CS_CLOUD_PHOTO_TOO_LARGE: 413,
  CS_CLOUD_PHOTO_TYPE: 415,
  CS_CLOUD_PHOTO_NOT_FOUND: 404,
  CS_CLOUD_PHOTO_MISSING: 400,
  CS_CLOUD_PHOTOS_UNAVAILABLE: 503,
  CS_CLOUD_PHOTO_CASE_FINAL: 409,
  CS_CLOUD_REPORT_NOT_FOUND: 404,
  CS_CLOUD_RANKING_NOT_PUBLISHED: 404,
  CS_CLOUD_REPORT_DECIDED: 409,
  CS_CLOUD_CALENDAR_INVALID: 500,
  CS_CLOUD_RULES_INVALID: 500,
  CS_CLOUD_CONFIG_INVALID: 500,
  CS_CLOUD_CATALOGUE_INVALID: 500,
  CS_CLOUD_CONFIG_REFUSED: 400,
  CS_CLOUD_CONFIG_STALE: 409,
  CS_CLOUD_CATEGORY_UNKNOWN: 400,
  CS_CLOUD_CASE_BAD_INPUT: 400,
  CS_CLOUD_PROVISION_FAILED: 502,
  CS_CLOUD_PROVISION_ID_USED: 409,
  CS_CLOUD_REGISTRY_INVALID: 400,
  CS_CLOUD_REGISTRY_NOT_FOUND: 404,
  CS_CLOUD_REGISTRY_EXISTS: 409,
  CS_CLOUD_REGISTRY_RETIRED: 409,
  CS_CLOUD_REGISTRY_CONFLICT: 409,
  CS_CLOUD_REGISTRY_IMPORT_INVALID: 400,
  CS_CLOUD_REGISTRY_PROVISION_FAILED: 502,
  CS_CLOUD_EDGE_CONFIG_INVALID: 422,
};

const EMERGENCY_STATUS: Record<string, number> = Object.fromEntries(Object.values(EmergencyErrors).map((e) => [e.code, e.status]));

/** HTTP status of a code (this registry, then emergency mode's); unknown codes of other packages count as client errors. */
export function statusOf(code: string): number {
  return (CloudErrorStatus as Record<string, number>)[code] ?? EMERGENCY_STATUS[code] ?? 400;
}
