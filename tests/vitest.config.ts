import { defineConfig } from 'vitest/config';

// Web unit tests (tests/web) and the wasm core's tests in Node (tests/wasm).
export default defineConfig({
  test: {
    include: ['tests/web/**/*.test.ts', 'tests/wasm/**/*.test.ts'],
    environment: 'node',
    testTimeout: 60_000,
  },
});
