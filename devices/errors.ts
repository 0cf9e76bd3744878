/** Error codes of devices/ (profiles, codecs, simulators). */
export const DeviceErrors = {
  PROFILE_INVALID: 'CS_DEV_PROFILE_INVALID',
  PROFILE_UNKNOWN: 'CS_DEV_PROFILE_UNKNOWN',
  /** `--profiles DIR` (or the `profiles` config key) names no directory. */
  PROFILE_DIR_UNREADABLE: 'CS_DEV_PROFILE_DIR_UNREADABLE',
  POINT_UNKNOWN: 'CS_DEV_POINT_UNKNOWN',
  POINT_READONLY: 'CS_DEV_POINT_READONLY',
  CODEC_LENGTH: 'CS_DEV_CODEC_LENGTH',
  CODEC_RANGE: 'CS_DEV_CODEC_RANGE',
  CODEC_TYPE: 'CS_DEV_CODEC_TYPE',
  DISTRICT_INVALID: 'CS_DEV_DISTRICT_INVALID',
  /** A rule set (devices/rules.ts) names an unknown kind, point or rule. */
  RULES_INVALID: 'CS_DEV_RULES_INVALID',
  SIM_DEVICE_UNKNOWN: 'CS_DEV_SIM_DEVICE_UNKNOWN',
  SIM_WRITE_FAILED: 'CS_DEV_SIM_WRITE_FAILED',
  /** A simulator's options are unusable (duplicate device or unit id, bad scenario). */
  SIM_CONFIG_INVALID: 'CS_DEV_SIM_CONFIG_INVALID',
  /** The simulator could not bind its TCP port. */
  SIM_LISTEN_FAILED: 'CS_DEV_SIM_LISTEN_FAILED',
  /** A `POINT=VALUE` assignment that cannot be parsed. */
  ASSIGNMENT_INVALID: 'CS_DEV_ASSIGNMENT_INVALID',
} as const;
