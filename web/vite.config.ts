import { defineConfig } from 'vitest/config';
import react from '@vitejs/plugin-react';
import tailwindcss from '@tailwindcss/vite';

// The Rust server serves dist/ on the same origin as the API, so the client
// only ever uses relative paths; in development Vite forwards them instead.
const backend = 'http://127.0.0.1:8000';

export default defineConfig({
  plugins: [react(), tailwindcss()],
  build: { outDir: 'dist', sourcemap: false },
  server: {
    proxy: {
      '/auth': backend,
      '/chat': backend,
      '/admin': backend,
      '/healthz': backend,
      '/ws': { target: backend, ws: true },
    },
  },
  test: {
    include: ['src/**/*.test.ts'],
    environment: 'node',
  },
});
