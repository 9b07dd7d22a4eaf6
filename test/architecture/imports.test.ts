import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import { ALLOWED } from "./allowlist.ts";
import { compare, cycles, importGraph, report, violations } from "./import-graph.ts";

const root = fileURLToPath(new URL("../../", import.meta.url));

describe("import boundaries of src/", () => {
  it("no new cycle, no import of another module's internals, no import from rpc into node", (t) => {
    const graph = importGraph(root);
    assert.ok(graph.size > 100, `read only ${graph.size} files`);
    const found = violations(graph);
    if (found.length > 0) t.diagnostic(`current violations (allowlisted ones included):\n${report(found)}`);
    const { fresh, stale } = compare(found, ALLOWED);
    assert.equal(fresh.length, 0, `new import violations:\n${report(fresh)}`);
    assert.deepEqual(
      stale.map((s) => `${s.rule}: ${s.entry}`),
      [],
      "these allowlisted imports are gone: take them off test/architecture/allowlist.ts",
    );
  });

  it("the checker finds each kind of violation", () => {
    const graph = new Map<string, string[]>([
      ["src/a/index.ts", ["src/a/x.ts"]],
      ["src/a/x.ts", ["src/a/y.ts", "src/b/index.ts"]],
      ["src/a/y.ts", ["src/a/x.ts", "src/b/inner.ts"]],
      ["src/b/index.ts", ["src/b/inner.ts"]],
      ["src/b/inner.ts", []],
      ["src/rpc/server.ts", ["src/node/index.ts"]],
      ["src/node/index.ts", []],
    ]);
    assert.deepEqual(cycles(graph), [["src/a/x.ts", "src/a/y.ts"]]);
    assert.equal(
      report(violations(graph)),
      [
        "file-level import cycle:",
        "  src/a/x.ts -> src/a/y.ts",
        "  src/a/y.ts -> src/a/x.ts",
        "imports another module's internal file instead of its index.ts:",
        "  src/a/y.ts -> src/b/inner.ts",
        "src/rpc imports src/node:",
        "  src/rpc/server.ts -> src/node/index.ts",
      ].join("\n"),
    );
  });

  it("reads every kind of import statement", () => {
    const dir = mkdtempSync(join(tmpdir(), "coco-imports-"));
    try {
      mkdirSync(join(dir, "src/a"), { recursive: true });
      const files: Record<string, string> = {
        "src/a/index.ts":
          'export * from "./star.ts";\nexport { x } from "./named.ts";\nimport "./bare.ts";\n',
        "src/a/user.ts":
          'import type { T } from "./types.ts";\nconst m = await import("./lazy.ts");\nimport fs from "node:fs";\n',
      };
      for (const [path, text] of Object.entries(files)) writeFileSync(join(dir, path), text);
      const graph = importGraph(dir);
      assert.deepEqual(graph.get("src/a/index.ts"), ["src/a/bare.ts", "src/a/named.ts", "src/a/star.ts"]);
      assert.deepEqual(
        graph.get("src/a/user.ts"),
        ["src/a/lazy.ts", "src/a/types.ts"],
        "import type, import()",
      );
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
