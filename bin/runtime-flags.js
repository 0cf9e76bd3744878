// V8 flags of the commands that run for long with a small, steady heap (set by the launcher before
// any module of ours loads; the bench gives its broker the same on the command line).
//
// The gateway (broker): the young generation stays at its initial 1 MiB semi-space instead of
// growing to 16 MiB under load and keeping that committed (about 4.5 MiB of RSS at start, and more
// after a burst of connections); measured against the broker's throughput in
// docs/architecture.md#broker-memory. `--max-semi-space-size` would do the same but is read only when
// the heap is set up, before this code runs; the growth factor is read each time the space would grow.
import { setFlagsFromString } from 'node:v8';

export const COMMAND_V8_FLAGS = {
  gateway: ['--semi-space-growth-factor=1'],
};

/** Applies the flags of `command` (argv's first word) to this process; returns them. */
export function applyCommandFlags(command) {
  const flags = Object.hasOwn(COMMAND_V8_FLAGS, command) ? COMMAND_V8_FLAGS[command] : [];
  for (const f of flags) setFlagsFromString(f);
  return flags;
}
