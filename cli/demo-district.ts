import { fileURLToPath } from 'node:url';

/** The demo district's file: the default of several commands, kept apart from cli/demo.ts, which loads every service. */
export const DEMO_DISTRICT = fileURLToPath(new URL('../devices/district/xiangzhou.yaml', import.meta.url));
