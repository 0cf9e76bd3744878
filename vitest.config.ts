import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // Rebuilds cloud/web/dist when its sources changed since the last build (the browser tests use it).
    globalSetup: ['test/setup/build-web.ts'],
    testTimeout: 30_000,
    hookTimeout: 30_000,
    // Tests start real servers on port 0; two workers suit this 2-core machine.
    pool: 'forks',
    maxWorkers: 2,
  },
});
