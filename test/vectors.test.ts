import assert from "node:assert/strict";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { fileURLToPath } from "node:url";

/**
 * The external vectors (../shared/vectors, next to the repository, never copied into it) are
 * not in a clean clone, so tests that need them skip, visibly. This test makes that explicit
 * and counted: it names every test file that reads them, and with COCO_REQUIRE_VECTORS=1 (set it
 * wherever the vectors are installed) their absence is a failure, not a skip (docs/testing.md).
 */
const ROOT = fileURLToPath(new URL("..", import.meta.url));
const VECTORS = join(ROOT, "..", "shared", "vectors");

function testFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((d) =>
    d.isDirectory() ? testFiles(join(dir, d.name)) : d.name.endsWith(".ts") ? [join(dir, d.name)] : [],
  );
}

test("tests that read ../shared/vectors: present, or skipped visibly (required with COCO_REQUIRE_VECTORS=1)", (t) => {
  const users = testFiles(join(ROOT, "test"))
    .filter((f) => readFileSync(f, "utf8").includes("shared/vectors"))
    .map((f) => f.slice(ROOT.length));
  assert.ok(users.length > 0);
  if (existsSync(VECTORS)) {
    assert.ok(readdirSync(VECTORS).length > 0, `${VECTORS} is empty`);
    return;
  }
  if (process.env.COCO_REQUIRE_VECTORS === "1") {
    assert.fail(`COCO_REQUIRE_VECTORS=1 but ${VECTORS} does not exist; ${users.length} test files need it`);
  }
  t.diagnostic(
    `no ${VECTORS}: the vector checks of ${users.length} test files are skipped: ${users.join(", ")}`,
  );
  t.skip(`no vectors: ${users.length} test files skip their vector checks`);
});
