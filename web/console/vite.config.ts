import { defineConfig } from "vite";

// The console is served by the Go server under /console/ (package
// web/console embeds dist/). One script and one stylesheet, content-hashed
// names, no inline script (the page's CSP allows scripts from 'self' only).
export default defineConfig({
  base: "/console/",
  build: {
    outDir: "dist",
    emptyOutDir: true,
    assetsDir: "assets",
    target: "es2022",
    modulePreload: { polyfill: false },
    assetsInlineLimit: 0,
    sourcemap: false,
    reportCompressedSize: false,
  },
});
