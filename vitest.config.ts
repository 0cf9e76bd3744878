import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 30_000,
    hookTimeout: 30_000,
    // Tests start real servers on port 0; two workers suit this 2-core machine.
    pool: 'forks',
    maxWorkers: 2,
  },
});
