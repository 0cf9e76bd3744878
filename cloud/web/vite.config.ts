import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vite';
import vue from '@vitejs/plugin-vue';

/**
 * The web application's build (docs/architecture.md#web-application): `npm run build:web`, run by
 * `npm install` (the `prepare` script). Everything is bundled into cloud/web/dist; nothing is fetched
 * from another origin at run time (the cloud serves the page with a self-only CSP).
 */
export default defineConfig({
  root: fileURLToPath(new URL('./app/', import.meta.url)),
  base: '/',
  plugins: [vue()],
  // The app imports the shared vocabulary (lib/vocabulary.ts) from outside its root.
  server: { fs: { allow: [fileURLToPath(new URL('../../', import.meta.url))] } },
  build: {
    outDir: fileURLToPath(new URL('./dist/', import.meta.url)),
    emptyOutDir: true,
    assetsDir: 'assets',
    // No inline data: URLs for assets: the CSP allows 'self' images and fonts, and a file caches better.
    assetsInlineLimit: 0,
    chunkSizeWarningLimit: 1500,
    reportCompressedSize: false,
  },
});
