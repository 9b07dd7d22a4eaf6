import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";
import { fileURLToPath, pathToFileURL } from "node:url";

const root = fileURLToPath(new URL("../../", import.meta.url));
const hook = pathToFileURL(join(root, "test/client/record-imports.mjs")).href;

/**
 * Every module a fresh Node process loads to run `script` (ES modules through the loader hook,
 * CommonJS ones from require's cache: the X.509 libraries load through require).
 */
function modulesLoadedBy(script: string): string[] {
  const dir = mkdtempSync(join(tmpdir(), "coco-imports-"));
  const out = join(dir, "modules.txt");
  try {
    const cjs = execFileSync(
      process.execPath,
      [
        "--import",
        hook,
        "--import",
        "tsx",
        "--input-type=module",
        "-e",
        `import { createRequire } from "node:module";\n${script}\nconsole.log(JSON.stringify(Object.keys(createRequire(import.meta.url).cache)));`,
      ],
      { cwd: root, env: { ...process.env, COCO_RECORD_IMPORTS: out }, encoding: "utf8" },
    );
    return [...readFileSync(out, "utf8").split("\n").filter(Boolean), ...(JSON.parse(cjs) as string[])];
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Libraries a short `coco gov` call has no use for, and which cost start-up time. */
const HEAVY = /@peculiar|reflect-metadata|tsyringe|undici|quickjs|@ethereumjs|shamir-secret-sharing/;

describe("coco gov loads nothing heavy (a CLI call is start-up time)", () => {
  it("the gov commands' module loads no X.509 library, undici, QuickJS or EVM", () => {
    const loaded = modulesLoadedBy(
      `await import(${JSON.stringify(pathToFileURL(join(root, "src/cli/gov.ts")).href)});`,
    );
    assert.ok(
      loaded.some((u) => u.endsWith("/src/gov/signed-request.ts")),
      "the check sees the command's imports (it signs with src/gov)",
    );
    assert.deepEqual(
      loaded.filter((u) => HEAVY.test(u)),
      [],
    );
  });

  it("the check would notice: building a certificate loads @peculiar/x509", () => {
    const crypto = pathToFileURL(join(root, "src/crypto/index.ts")).href;
    const loaded = modulesLoadedBy(
      `const c = await import(${JSON.stringify(crypto)});\nawait c.createIdentityCertificate({ name: "m", now: new Date(), serial: Uint8Array.of(1) });`,
    );
    assert.ok(
      loaded.some((u) => u.includes("@peculiar/x509")),
      `expected @peculiar/x509 among ${loaded.length} modules`,
    );
  });
});
