#!/usr/bin/env node
// Entry point of the `citysteward` command. The sources are TypeScript, run through tsx's loader.
import { register } from 'tsx/esm/api';

register();
await import('../cli/main.ts');
