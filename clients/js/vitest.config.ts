/*
 * Vitest settings: the package's unit tests, in jsdom (WebSocket, EventSource
 * and rAF are faked per test). `*.vue2.test.ts` run a second time against
 * Vue 2.7 (the `vue2` dev dependency, npm:vue@2.7) in place of Vue 3, so
 * litchi-client/vue is checked on both.
 */
import { fileURLToPath } from 'node:url'
import { defineConfig } from 'vitest/config'

export default defineConfig({
  test: {
    environment: 'jsdom',
    root: fileURLToPath(new URL('./', import.meta.url)),
    restoreMocks: true,
    testTimeout: 10_000,
    projects: [
      {
        extends: true,
        test: { name: 'unit', include: ['tests/**/*.test.ts'], exclude: ['tests/**/*.vue2.test.ts'] },
      },
      {
        extends: true,
        test: { name: 'vue2.7', include: ['tests/**/*.vue2.test.ts'] },
        resolve: { alias: [{ find: /^vue$/, replacement: 'vue2' }] },
      },
    ],
  },
})
