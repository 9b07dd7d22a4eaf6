import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { createLogger, parseConfig, realEnvironment, runNode } from "../../src/node/index.ts";
import { budget } from "../e2e/waits.ts";
import { makeIdentity } from "../helpers/network.ts";

const WRITER = join(import.meta.dirname, "crash-writer.ts");

/** Runs the writer until it has reported `count` commits, then kill -9s it. */
function runAndKill(dir: string, count: number, firstId: number): Promise<Set<number>> {
  return new Promise((resolve, reject) => {
    const child = spawn(
      process.execPath,
      ["--import", "tsx", WRITER, dir, "member0_cert.pem", String(firstId)],
      {
        stdio: ["ignore", "pipe", "inherit"],
      },
    );
    const committed = new Set<number>();
    let buffer = "";
    const guard = setTimeout(() => child.kill("SIGKILL"), budget(60_000));
    child.stdout.on("data", (chunk: Buffer) => {
      buffer += chunk.toString();
      const lines = buffer.split("\n");
      buffer = lines.pop()!;
      for (const line of lines) {
        const match = /^committed (\d+)$/.exec(line);
        if (match) committed.add(Number(match[1]));
      }
      if (committed.size >= count) child.kill("SIGKILL");
    });
    child.once("exit", (_code, signal) => {
      clearTimeout(guard);
      if (signal !== "SIGKILL")
        reject(new Error(`writer exited on its own (${signal}) after ${committed.size}`));
      else resolve(committed);
    });
  });
}

test("kill -9 under load loses nothing that was reported committed", {
  timeout: budget(180_000),
}, async () => {
  const dir = mkdtempSync(join(tmpdir(), "coco-crash-"));
  try {
    writeFileSync(join(dir, "member0_cert.pem"), (await makeIdentity("member0")).certPem);
    const reported = new Set<number>();
    for (let round = 0; round < 3; round++) {
      for (const id of await runAndKill(dir, 300, round * 100_000)) reported.add(id);
    }
    const config = parseConfig(
      {
        dir: "node0",
        rpc: { address: "127.0.0.1:0" },
        members: [{ cert: "member0_cert.pem" }],
        openAtNodes: 1,
        log: { level: "error" },
      },
      dir,
    );
    const running = await runNode(
      config,
      realEnvironment,
      createLogger({ level: "error", format: "json" }),
      null,
    );
    try {
      const store = running.node.state.store;
      const encoder = new TextEncoder();
      const missing = [...reported].filter((id) => {
        const value = store.read("records", encoder.encode(`k${id}`));
        return value === undefined || Buffer.from(value).toString() !== `v${id}`;
      });
      assert.deepEqual(missing, [], `${missing.length} of ${reported.size} committed writes lost`);
      assert.ok(reported.size >= 900);
    } finally {
      await running.stop();
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
