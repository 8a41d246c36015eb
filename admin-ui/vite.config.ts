import { defineConfig } from 'vite';
import preact from '@preact/preset-vite';

// The build is committed (dist/) and embedded in the binary, and CI rebuilds it
// and fails on any difference, so the output must be a pure function of the
// sources and the locked packages: no timestamps, no absolute paths, no
// sourcemaps (they would embed paths), content-hashed file names only.
export default defineConfig({
  base: '/_/',
  plugins: [preact({ devtoolsInProd: false, prefreshEnabled: false })],
  build: {
    outDir: 'dist',
    emptyOutDir: true,
    sourcemap: false,
    target: 'es2020',
    modulePreload: { polyfill: false },
    reportCompressedSize: true,
    assetsInlineLimit: 0,
  },
  server: {
    proxy: { '/api': 'http://127.0.0.1:8090' },
  },
});
