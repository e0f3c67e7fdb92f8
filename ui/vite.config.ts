// The dashboard is built into the Python package, where the API serves it at /ui/ under a
// strict Content-Security-Policy: one script and one stylesheet, fixed names (the API sends
// them with `Cache-Control: no-cache`, so no content hash is needed), no inline code.
import { defineConfig } from "vite";

export default defineConfig({
  base: "/ui/",
  build: {
    outDir: "../src/agentroster/api/ui_static",
    emptyOutDir: true,
    modulePreload: { polyfill: false },
    assetsInlineLimit: 0,
    target: "es2022",
    rollupOptions: {
      output: {
        entryFileNames: "app.js",
        chunkFileNames: "[name].js",
        assetFileNames: "[name][extname]",
      },
    },
  },
});
