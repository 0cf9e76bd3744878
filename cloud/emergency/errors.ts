/** Error codes of emergency mode and the warning feed (HTTP status where an API answers them). */
export const EmergencyErrors = {
  CAP_TOO_LARGE: { code: 'CS_CAP_TOO_LARGE', status: 413 },
  CAP_NOT_XML: { code: 'CS_CAP_NOT_XML', status: 400 },
  CAP_DOCTYPE: { code: 'CS_CAP_DOCTYPE', status: 400 },
  CAP_NAMESPACE: { code: 'CS_CAP_NAMESPACE', status: 422 },
  CAP_INVALID: { code: 'CS_CAP_INVALID', status: 422 },
  MODE_INVALID: { code: 'CS_MODE_INVALID', status: 400 },
  MODE_CONFLICT: { code: 'CS_MODE_CONFLICT', status: 409 },
} as const;
