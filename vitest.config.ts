import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    // Memory tests call global.gc() so that they measure what is retained, not GC timing.
    execArgv: ['--expose-gc'],
  },
});
