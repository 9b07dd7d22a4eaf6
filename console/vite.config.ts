import { fileURLToPath } from "node:url";
import { defineConfig } from "vite";

// The console's front end: Preact with TypeScript, built into console/dist, which the console
// server (src/console) serves. Nothing is loaded from anywhere else at run time.
export default defineConfig({
  root: fileURLToPath(new URL(".", import.meta.url)),
  base: "/",
  logLevel: "warn",
  oxc: { jsx: { runtime: "automatic", importSource: "preact" } },
  build: {
    outDir: "dist",
    emptyOutDir: true,
    target: "es2022",
    reportCompressedSize: true,
    chunkSizeWarningLimit: 300,
  },
});
