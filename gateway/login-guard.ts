/** The login guard is shared with the cloud's sign-in (lib/login-guard.ts). */
export * from '../lib/login-guard.ts';
