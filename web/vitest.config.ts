import { defineConfig } from 'vitest/config';

// Unit tests of the app's pure logic (URL state, formatting, translations, legends, colour classes, the API
// client): `src/**/*.test.ts`, next to the code, in Node. The browser tests in tests/ run with `npm test`.
export default defineConfig({
  test: {
    environment: 'node',
    include: ['src/**/*.test.ts'],
    // globals stubbed with vi.stubGlobal and mocks are undone after each test
    unstubGlobals: true,
    restoreMocks: true,
  },
});
