/** The health message's schema is a wire schema: it lives in lib/messages.ts with the others. */
export { EdgeHealthSchema, SlaveHealthSchema, type EdgeHealth } from '../lib/messages.ts';
