import { defineConfig } from 'vite';

// The portal's bundle: web/dist, served by `berth server` at / (src/api/portal-routes.ts). JSX is
// Preact's (automatic runtime); the typed client and wire types come from ../src/client and ../src/core.
export default defineConfig({
  root: import.meta.dirname,
  base: '/',
  oxc: { jsx: { runtime: 'automatic', importSource: 'preact' } },
  build: {
    outDir: process.env.BERTH_WEB_OUT ?? 'dist',
    emptyOutDir: true,
    target: 'es2022',
    sourcemap: false,
    // uPlot is only for the metrics page: a chunk of its own, loaded when that page opens.
    chunkSizeWarningLimit: 200,
  },
  server: { proxy: { '/v1': process.env.BERTH_URL ?? 'http://127.0.0.1:7070' } },
});
