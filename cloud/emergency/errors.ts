/** Error codes of emergency mode and the warning feed, with the HTTP status the API answers them with. */
export const EmergencyErrors = {
  CAP_TOO_LARGE: { code: 'CS_CAP_TOO_LARGE', status: 413 },
  CAP_CONTENT_TYPE: { code: 'CS_CAP_CONTENT_TYPE', status: 415 },
  CAP_NOT_XML: { code: 'CS_CAP_NOT_XML', status: 400 },
  CAP_DOCTYPE: { code: 'CS_CAP_DOCTYPE', status: 400 },
  CAP_NAMESPACE: { code: 'CS_CAP_NAMESPACE', status: 422 },
  CAP_INVALID: { code: 'CS_CAP_INVALID', status: 422 },
  /** Nested deeper than any CAP 1.2 document is (alert, info, area, geocode, value). */
  CAP_TOO_DEEP: { code: 'CS_CAP_TOO_DEEP', status: 422 },
  /** An element name that no CAP document uses and that would reach JavaScript internals (`__proto__`), or too long. */
  CAP_ELEMENT_NAME: { code: 'CS_CAP_ELEMENT_NAME', status: 422 },
  /** Every info block's `expires` has passed (CAP 1.2 section 3.2.2): nothing left in force. */
  CAP_EXPIRED: { code: 'CS_CAP_EXPIRED', status: 422 },
  /** `sent` lies further in the future than the configured clock skew allows. */
  CAP_SENT_IN_FUTURE: { code: 'CS_CAP_SENT_IN_FUTURE', status: 422 },
  MODE_INVALID: { code: 'CS_MODE_INVALID', status: 400 },
  MODE_NOT_STARTED: { code: 'CS_MODE_NOT_STARTED', status: 503 },
} as const;
