#!/usr/bin/env node
// Entry point for the `coco` command: runs the compiled CLI in dist/, compiling src/ first when it
// changed since the last build (bin/build.js; about a second). Without dist/ or esbuild (an
// install without dev dependencies), it falls back to running the TypeScript through tsx.
import { existsSync } from "node:fs";

const main = new URL("../dist/src/cli/main.js", import.meta.url);
const { isStale, build } = await import("./build.js");
let compiled = existsSync(main);
if (isStale()) {
  try {
    await build();
    compiled = true;
  } catch (e) {
    const fallback = compiled ? "running the previous build in dist/" : "running it through tsx";
    process.stderr.write(`coco: cannot compile src/ (${e.message}); ${fallback}\n`);
  }
}
if (compiled) {
  await import(main.href);
} else {
  const { register } = await import("tsx/esm/api");
  register();
  await import("../src/cli/main.ts");
}
