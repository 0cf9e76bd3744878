import { userInfo } from 'node:os';

/** The actor of a change made with the command line: `cli:` and the operating-system user who ran it. */
export function cliActor(): string {
  try {
    return `cli:${userInfo().username}`;
  } catch {
    return 'cli';
  }
}
