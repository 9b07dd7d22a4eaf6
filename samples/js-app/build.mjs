// One command builds the bundle: `npm run build` → dist/bundle.json ({metadata, modules}).
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { build } from "esbuild";

const here = dirname(fileURLToPath(import.meta.url));
const out = await build({
  entryPoints: [join(here, "src/app.ts")],
  bundle: true,
  format: "esm",
  target: "es2020",
  write: false,
  logLevel: "warning",
});
const metadata = JSON.parse(readFileSync(join(here, "app.json"), "utf8"));
mkdirSync(join(here, "dist"), { recursive: true });
const bundle = { metadata, modules: [{ name: "app.js", module: out.outputFiles[0].text }] };
writeFileSync(join(here, "dist/bundle.json"), `${JSON.stringify(bundle, null, 2)}\n`);
console.log(`dist/bundle.json: ${bundle.modules[0].module.length} bytes of app.js`);
