#!/usr/bin/env node
// Entry point of the `citysteward` command. It runs the server code built ahead of time (dist/, made by
// `npm run build:server`, which `npm install` runs) when that build is fresh, else the TypeScript sources
// through tsx's loader; CITYSTEWARD_RUN=build|source|auto decides explicitly (bin/build-state.js).
import { selectRun } from './build-state.js';
import { applyCommandFlags } from './runtime-flags.js';

applyCommandFlags(process.argv[2]);

const choice = selectRun();
if (choice.error) {
  console.error(`citysteward: ${choice.error}`);
  process.exit(1);
}
if (choice.run === 'build') {
  await import(choice.entry);
} else {
  const { register } = await import('tsx/esm/api');
  register();
  await import('../cli/main.ts');
}
