// What `coco app install` and `coco sandbox --js-app` read from an app directory.
import assert from "node:assert/strict";
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { loadAppBundle } from "../../src/cli/app-install.ts";

const ccfSample = join(import.meta.dirname, "..", "..", "..", "shared", "vectors", "ccf", "app-logging");

test("CCF's layout (app.json + src/) becomes a bundle with modules named below src/", () => {
  const dir = mkdtempSync(join(tmpdir(), "coco-app-"));
  try {
    mkdirSync(join(dir, "src", "lib"), { recursive: true });
    writeFileSync(join(dir, "app.json"), JSON.stringify({ endpoints: { "/x": {} } }));
    writeFileSync(join(dir, "src", "app.js"), "export function x() {}");
    writeFileSync(join(dir, "src", "lib", "util.js"), "export const y = 1;");
    writeFileSync(join(dir, "src", "notes.txt"), "not a module");
    const bundle = loadAppBundle(dir);
    assert.deepEqual(bundle.metadata, { endpoints: { "/x": {} } });
    assert.deepEqual(
      bundle.modules.map((m) => m.name),
      ["app.js", "lib/util.js"],
    );
    // A bundle.json wins over app.json.
    writeFileSync(join(dir, "bundle.json"), JSON.stringify({ metadata: { endpoints: {} }, modules: [] }));
    assert.deepEqual(loadAppBundle(dir).modules, []);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("a failing build script and an empty directory are refused with the reason", () => {
  const dir = mkdtempSync(join(tmpdir(), "coco-app-"));
  try {
    assert.throws(() => loadAppBundle(dir), /holds no package.json build script, bundle.json or app.json/);
    writeFileSync(
      join(dir, "package.json"),
      JSON.stringify({ scripts: { build: "node -e \"console.error('kaput'); process.exit(3)\"" } }),
    );
    assert.throws(() => loadAppBundle(dir), /npm run build failed in .*\n.*kaput/s);
    assert.throws(() => loadAppBundle(join(dir, "nope")), /no app directory/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("CCF's logging sample directory is read in place", { skip: !existsSync(ccfSample) }, () => {
  const bundle = loadAppBundle(ccfSample);
  assert.ok(bundle.modules.some((m) => m.name === "logging.js"));
  assert.ok("/log/private" in bundle.metadata.endpoints);
});
