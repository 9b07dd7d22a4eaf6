// Compiles src/ to dist/src/ (plain JavaScript, one file per source file, same layout) so `coco` and
// the sandbox's nodes start without compiling TypeScript each time. Run by `npm ci` (`prepare`),
// `npm run build`, and by bin/coco.js whenever src/ changed since the last build.
//
// The compiler is esbuild, the same transform tsx applies in development and tests, so the
// compiled code behaves exactly as the code the tests run. Type checking is `npm run check`.
import { createHash } from "node:crypto";
import { mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from "node:fs";
import { dirname, join, relative } from "node:path";
import { fileURLToPath } from "node:url";

const ROOT = fileURLToPath(new URL("..", import.meta.url));
const SRC = join(ROOT, "src");
/** Code outside src/ that src/ imports: the logging sample, built into the node. */
const SAMPLES = join(ROOT, "samples", "logging");
/** dist/ mirrors the repository (dist/src, dist/samples), so relative imports stay as they are. */
export const DIST = join(ROOT, "dist");
const STAMP = join(DIST, ".source-stamp");

function walk(dir) {
  const out = [];
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) out.push(...walk(path));
    else if (entry.isFile()) out.push(path);
  }
  return out.sort();
}

/** A fingerprint of src/ (every file's path, size and modification time) and of this script. */
function sourceStamp() {
  const hash = createHash("sha256");
  for (const file of [...walk(SRC), ...walk(SAMPLES), fileURLToPath(import.meta.url)]) {
    const s = statSync(file);
    hash.update(`${relative(ROOT, file)}\0${s.size}\0${s.mtimeMs}\n`);
  }
  return hash.digest("hex");
}

/** True when dist/ is missing or was built from a different src/. */
export function isStale() {
  try {
    return readFileSync(STAMP, "utf8") !== sourceStamp();
  } catch {
    return true;
  }
}

/** Writes a file whole or not at all, so a process starting meanwhile never reads half of one. */
function writeAtomically(path, contents) {
  mkdirSync(dirname(path), { recursive: true });
  const tmp = `${path}.${process.pid}.tmp`;
  writeFileSync(tmp, contents);
  renameSync(tmp, path);
}

/** Compiles every .ts file under src/ and copies the other files (certificates, constitution). */
export async function build() {
  const stamp = sourceStamp();
  const { build: esbuild } = await import("esbuild");
  const files = walk(SRC);
  const sources = [...files, ...walk(SAMPLES)].filter((f) => f.endsWith(".ts") && !f.endsWith(".d.ts"));
  const result = await esbuild({
    absWorkingDir: ROOT,
    entryPoints: sources,
    outdir: DIST,
    outbase: ROOT,
    // "bundle" only so that the plugin below sees every import: each one stays external, a
    // relative `./x.ts` becoming `./x.js`, so each output file is its source file compiled.
    bundle: true,
    platform: "node",
    format: "esm",
    target: "node20",
    tsconfig: join(ROOT, "tsconfig.json"),
    write: false,
    logLevel: "error",
    plugins: [
      {
        name: "keep-imports",
        setup(b) {
          b.onResolve({ filter: /.*/ }, (args) => {
            if (args.kind === "entry-point") return undefined;
            const path = args.path.startsWith(".") ? args.path.replace(/\.ts$/, ".js") : args.path;
            return { path, external: true };
          });
        },
      },
    ],
  });
  const written = new Set();
  for (const out of result.outputFiles) {
    writeAtomically(out.path, out.contents);
    written.add(out.path);
  }
  for (const file of files.filter((f) => !f.endsWith(".ts"))) {
    const target = join(DIST, relative(ROOT, file));
    writeAtomically(target, readFileSync(file));
    written.add(target);
  }
  // Output of sources since deleted would otherwise linger (and count in the code measurement).
  for (const file of walk(DIST)) {
    if (!written.has(file) && file !== STAMP) rmSync(file, { force: true });
  }
  writeAtomically(STAMP, stamp);
  return { files: written.size };
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const started = performance.now();
  mkdirSync(DIST, { recursive: true });
  const { files } = await build();
  console.log(`built dist/ (${files} files) in ${Math.round(performance.now() - started)} ms`);
}
