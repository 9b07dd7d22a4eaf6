import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";
import { fileURLToPath, pathToFileURL } from "node:url";

const root = fileURLToPath(new URL("../../", import.meta.url));
const hook = pathToFileURL(join(root, "test/client/record-imports.mjs")).href;

/** Every module URL a fresh Node process loads to import `entry` (a path from the repo root). */
function modulesLoadedBy(entry: string): string[] {
  const dir = mkdtempSync(join(tmpdir(), "coco-imports-"));
  const out = join(dir, "modules.txt");
  try {
    const target = pathToFileURL(join(root, entry)).href;
    execFileSync(
      process.execPath,
      [
        "--import",
        hook,
        "--import",
        "tsx",
        "--input-type=module",
        "-e",
        `await import(${JSON.stringify(target)});`,
      ],
      { cwd: root, env: { ...process.env, COCO_RECORD_IMPORTS: out }, stdio: ["ignore", "ignore", "pipe"] },
    );
    return readFileSync(out, "utf8").split("\n").filter(Boolean);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** QuickJS itself, or Coco's sandbox around it. */
function jsRuntimeModules(urls: string[]): string[] {
  return urls.filter((u) => /quickjs/i.test(u) || u.includes("/src/js/"));
}

describe("the client library loads no JS runtime", () => {
  it("importing src/client loads neither QuickJS nor src/js", () => {
    const loaded = modulesLoadedBy("src/client/index.ts");
    assert.ok(
      loaded.some((u) => u.endsWith("/src/gov/signed-request.ts")),
      "the check sees the client's imports (it signs governance requests with src/gov)",
    );
    assert.deepEqual(jsRuntimeModules(loaded), []);
  });

  it("the check would notice: importing src/js loads QuickJS", () => {
    const loaded = modulesLoadedBy("src/js/index.ts");
    assert.ok(
      loaded.some((u) => /quickjs-emscripten-core/.test(u)),
      `expected QuickJS among ${loaded.length} modules`,
    );
  });
});
