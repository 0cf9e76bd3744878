/**
 * Entry of the bench's broker process, built as production's code is (bench/brokers.ts): it sets the
 * V8 flags of `citysteward gateway` the way the launcher does (bin/runtime-flags.js, before any module
 * of ours loads), then runs the broker (gateway-broker.ts, whose header gives the IPC protocol).
 */
import { applyCommandFlags } from '../bin/runtime-flags.js';

applyCommandFlags('gateway');
await import('./gateway-broker.ts');
