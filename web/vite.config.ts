import { defineConfig } from 'vite';

// The API the dev server forwards to: a running `urbantwin demo` (or `serve`), by default on 127.0.0.1:1026.
const api = process.env.URBANTWIN_API ?? 'http://127.0.0.1:1026';
const proxied = ['/ngsi-ld', '/ogc', '/tiles', '/api', '/health', '/version'];

export default defineConfig({
  base: '/',
  build: {
    outDir: 'dist',
    emptyOutDir: true,
    target: 'es2022',
    sourcemap: true,
    chunkSizeWarningLimit: 1500,
  },
  server: {
    host: '127.0.0.1',
    port: 5173,
    proxy: Object.fromEntries(proxied.map((p) => [p, { target: api, changeOrigin: false }])),
  },
  preview: {
    host: '127.0.0.1',
    proxy: Object.fromEntries(proxied.map((p) => [p, { target: api, changeOrigin: false }])),
  },
});
