/**
 * What a new user meets in their first commands: the version, required options marked, a missing
 * directory named as such, the workspace found from where they stand, and an unreachable node
 * named with the nodes that do answer.
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import {
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { createServer, type Server } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { budget } from "../e2e/waits.ts";
import { coco, reservePorts } from "../helpers/cli.ts";

const ROOT = join(import.meta.dirname, "..", "..");
/** `coco` as installed (bin/coco.js, the compiled code), run from `cwd`. */
function installed(args: string[], cwd?: string, env: NodeJS.ProcessEnv = process.env) {
  return spawnSync(process.execPath, [join(ROOT, "bin", "coco.js"), ...args], {
    cwd,
    env,
    encoding: "utf8",
    // Building dist/ (a full tsc run) takes tens of seconds on an idle two-core machine, and
    // stretches with the load.
    timeout: budget(120_000),
  });
}

const VERSION = (JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8")) as { version: string }).version;

describe("coco CLI, first commands", () => {
  test("--version prints the package's version", () => {
    const result = coco(["--version"]);
    assert.equal(result.status, 0, result.stderr);
    assert.equal(result.stdout.trim(), VERSION);
  });

  test("the installed command runs the compiled code, building it when src/ changed", () => {
    const result = installed(["--version"]);
    assert.equal(result.status, 0, result.stderr);
    assert.equal(result.stdout.trim(), VERSION);
    assert.ok(existsSync(join(ROOT, "dist", "src", "cli", "main.js")), "dist/ was built");
  });

  test("help marks required options", () => {
    for (const command of [
      ["receipt", "verify"],
      ["ledger", "audit"],
    ]) {
      const result = coco([...command, "--help"]);
      assert.equal(result.status, 0, result.stderr);
      assert.match(result.stdout, /--service-cert <pem>\s+the service certificate \(required\)/);
    }
  });

  test("ledger audit and read name a directory that is not there", () => {
    const audit = coco(["ledger", "audit", "/nonexistent", "--service-cert", "x.pem"]);
    assert.equal(audit.status, 1);
    assert.match(audit.stderr, /no such directory: \/nonexistent/);
    assert.doesNotMatch(audit.stderr, /INVALID/);
    const read = coco(["ledger", "read", "/nonexistent"]);
    assert.equal(read.status, 1);
    assert.match(read.stderr, /no such directory: \/nonexistent/);
  });

  describe("the workspace, found from where the user stands", () => {
    let root: string;
    let workspace: string;
    let live: Server;
    let ports: number;
    before(async () => {
      root = mkdtempSync(join(tmpdir(), "coco-first-hour-"));
      workspace = join(root, "workspace");
      mkdirSync(workspace);
      const keys = coco(["keygen", "member", "member0", "--dir", workspace]);
      assert.equal(keys.status, 0, keys.stderr);
      // Any certificate does as the pinned one: no TLS connection gets that far.
      copyFileSync(join(workspace, "member0_cert.pem"), join(workspace, "service_cert.pem"));
      ports = await reservePorts(2);
      // node0 (the recorded primary) is down; node1 accepts connections.
      live = createServer((socket) => socket.destroy());
      await new Promise<void>((resolve) => live.listen(ports + 1, "127.0.0.1", resolve));
      writeFileSync(
        join(workspace, "network.json"),
        JSON.stringify({
          service_cert: join(workspace, "service_cert.pem"),
          primary: "aa",
          nodes: [
            { id: "aa", rpc_address: `127.0.0.1:${ports}`, node_address: "127.0.0.1:1", pid: -1 },
            { id: "bb", rpc_address: `127.0.0.1:${ports + 1}`, node_address: "127.0.0.1:2", pid: -1 },
          ],
        }),
      );
    });
    after(() => {
      live.close();
      rmSync(root, { recursive: true, force: true });
    });

    function expectUnreachable(result: { status: number | null; stderr: string }): void {
      assert.equal(result.status, 1, result.stderr);
      assert.match(result.stderr, new RegExp(`cannot reach node0 at https://127\\.0\\.0\\.1:${ports}`));
      assert.match(result.stderr, new RegExp(`https://127\\.0\\.0\\.1:${ports + 1} \\(node1\\)`));
      assert.match(result.stderr, /--url/);
    }

    test("from the directory above it, from inside it, and through COCO_WORKSPACE", () => {
      expectUnreachable(installed(["gov", "show", "abc"], root));
      expectUnreachable(installed(["gov", "show", "abc"], workspace));
      const elsewhere = mkdtempSync(join(tmpdir(), "coco-elsewhere-"));
      try {
        expectUnreachable(
          installed(["gov", "show", "abc"], elsewhere, { ...process.env, COCO_WORKSPACE: workspace }),
        );
      } finally {
        rmSync(elsewhere, { recursive: true, force: true });
      }
    });

    test("with no workspace anywhere, it says what to give", () => {
      const nowhere = mkdtempSync(join(tmpdir(), "coco-nowhere-"));
      try {
        const result = installed(["gov", "show", "abc"], nowhere);
        assert.equal(result.status, 1);
        assert.match(result.stderr, /no workspace found from .*--service-cert or set COCO_WORKSPACE/);
      } finally {
        rmSync(nowhere, { recursive: true, force: true });
      }
    });
  });
});
