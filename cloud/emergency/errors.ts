/** Error codes of emergency mode and the warning feed, with the HTTP status the API answers them with. */
export const EmergencyErrors = {
  CAP_TOO_LARGE: { code: 'CS_CAP_TOO_LARGE', status: 413 },
  CAP_CONTENT_TYPE: { code: 'CS_CAP_CONTENT_TYPE', status: 415 },
  CAP_NOT_XML: { code: 'CS_CAP_NOT_XML', status: 400 },
  CAP_DOCTYPE: { code: 'CS_CAP_DOCTYPE', status: 400 },
  CAP_NAMESPACE: { code: 'CS_CAP_NAMESPACE', status: 422 },
  CAP_INVALID: { code: 'CS_CAP_INVALID', status: 422 },
  MODE_INVALID: { code: 'CS_MODE_INVALID', status: 400 },
  MODE_NOT_STARTED: { code: 'CS_MODE_NOT_STARTED', status: 503 },
} as const;
