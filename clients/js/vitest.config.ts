/* Vitest settings: the package's unit tests, in jsdom (WebSocket, EventSource and rAF are faked per test). */
import { fileURLToPath } from 'node:url'
import { defineConfig } from 'vitest/config'

export default defineConfig({
  test: {
    environment: 'jsdom',
    include: ['tests/**/*.test.ts'],
    root: fileURLToPath(new URL('./', import.meta.url)),
    restoreMocks: true,
    testTimeout: 10_000,
  },
})
