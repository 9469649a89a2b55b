/* Vitest settings: unit tests run in jsdom with the app's Vite config (aliases, .vue). */
import { fileURLToPath } from 'node:url'
import { defineConfig, mergeConfig } from 'vitest/config'
import viteConfig from './vite.config.ts'

export default mergeConfig(
  viteConfig,
  defineConfig({
    test: {
      environment: 'jsdom',
      include: ['tests/**/*.test.ts'],
      root: fileURLToPath(new URL('./', import.meta.url)),
      restoreMocks: true,
      testTimeout: 10_000,
    },
  }),
)
