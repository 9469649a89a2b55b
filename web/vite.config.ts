/*
 * Vite build and dev-server settings for the Litchi web app.
 * `npm run dev` proxies the API (HTTP, SSE and the WebSocket) to a local
 * `litchi serve` so the app runs same-origin, exactly as when the server
 * serves the built files from web/dist.
 */
import { fileURLToPath, URL } from 'node:url'
import { defineConfig } from 'vite'
import vue from '@vitejs/plugin-vue'
import packageJson from './package.json' with { type: 'json' }

const serverTarget = process.env.LITCHI_SERVER ?? 'http://127.0.0.1:9527'

export default defineConfig({
  plugins: [vue()],
  define: { __APP_VERSION__: JSON.stringify(packageJson.version) },
  resolve: {
    alias: { '@': fileURLToPath(new URL('./src', import.meta.url)) },
  },
  server: {
    host: '127.0.0.1',
    proxy: {
      '/api': { target: serverTarget, ws: true, changeOrigin: false },
      '/healthz': { target: serverTarget },
    },
  },
  build: {
    outDir: 'dist',
    emptyOutDir: true,
    // Small app: one chunk per route view is plenty; keep sourcemaps out of dist.
    sourcemap: false,
  },
})
