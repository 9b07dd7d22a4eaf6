import assert from "node:assert/strict";
import type { ChildProcess } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { Agent, request } from "undici";
import { coco, cocoBackground, reservePorts } from "../helpers/cli.ts";

function waitForOutput(child: ChildProcess, pattern: RegExp, timeoutMs = 90_000): Promise<string> {
  return new Promise((resolve, reject) => {
    let output = "";
    const timer = setTimeout(
      () => reject(new Error(`timed out waiting for ${pattern}; output:\n${output}`)),
      timeoutMs,
    );
    const onData = (chunk: Buffer) => {
      output += chunk.toString();
      if (pattern.test(output)) {
        clearTimeout(timer);
        resolve(output);
      }
    };
    child.stdout!.on("data", onData);
    child.stderr!.on("data", (chunk: Buffer) => (output += chunk.toString()));
    child.once("exit", (code) => {
      clearTimeout(timer);
      reject(new Error(`sandbox exited (${code}) early; output:\n${output}`));
    });
  });
}

function stop(child: ChildProcess): Promise<number | null> {
  return new Promise((resolve, reject) => {
    if (child.exitCode !== null || child.signalCode !== null) {
      reject(new Error(`the sandbox had already exited (${child.exitCode ?? child.signalCode})`));
      return;
    }
    child.removeAllListeners("exit");
    child.once("exit", (code) => resolve(code));
    child.kill("SIGINT");
  });
}

test("coco sandbox: starts opened, writes network.json, stops on Ctrl-C and resumes its ledger", {
  timeout: 180_000,
}, async () => {
  const dir = mkdtempSync(join(tmpdir(), "coco-sandbox-"));
  // Three RPC ports, then three node-to-node ports.
  const port = await reservePorts(6);
  let child = cocoBackground(["sandbox", "--dir", dir, "--port", String(port)]);
  try {
    const output = await waitForOutput(child, /Ctrl-C stops the network/);
    assert.match(output, new RegExp(`https://127\\.0\\.0\\.1:${port}`));
    assert.match(output, /curl --cacert .*service_cert\.pem --cert .*user0_cert\.pem/);
    const network = JSON.parse(readFileSync(join(dir, "network.json"), "utf8"));
    assert.equal(network.nodes.length, 3, "three nodes by default");
    assert.ok(
      network.nodes.some((n: { id: string }) => n.id === network.primary),
      "names the primary",
    );
    assert.deepEqual(
      network.nodes.map((n: { rpc_address: string }) => n.rpc_address),
      [0, 1, 2].map((i) => `127.0.0.1:${port + i}`),
    );
    assert.ok(network.nodes.every((n: { pid: number }) => n.pid > 0));

    const agent = () =>
      new Agent({
        connect: {
          ca: readFileSync(join(dir, "service_cert.pem")),
          cert: readFileSync(join(dir, "user0_cert.pem")),
          key: readFileSync(join(dir, "user0_privk.pem")),
        },
      });
    let dispatcher = agent();
    const put = await request(`https://127.0.0.1:${port}/app/log/private?id=42`, {
      method: "PUT",
      dispatcher,
      headers: { "content-type": "application/json", "x-coco-wait": "commit" },
      body: JSON.stringify({ msg: "kept across restarts" }),
    });
    assert.equal(put.statusCode, 200);
    await put.body.dump();
    await dispatcher.close();
    assert.equal(await stop(child), 0);

    child = cocoBackground(["sandbox", "--dir", dir, "--port", String(port)]);
    await waitForOutput(child, /Ctrl-C stops the network/);
    dispatcher = agent();
    const get = await request(`https://127.0.0.1:${port}/app/log/private?id=42`, { dispatcher });
    assert.equal(get.statusCode, 200);
    assert.deepEqual(await get.body.json(), { msg: "kept across restarts" });
    await dispatcher.close();
  } finally {
    await stop(child);
    rmSync(dir, { recursive: true, force: true });
  }
});

test("coco sandbox: a port already in use is named before any node starts", async () => {
  const dir = mkdtempSync(join(tmpdir(), "coco-sandbox-"));
  const port = await reservePorts(6);
  // Something else holds the second node-to-node port.
  const squatter = createServer();
  await new Promise<void>((resolve) => squatter.listen(port + 4, "127.0.0.1", resolve));
  try {
    const result = coco(["sandbox", "--dir", dir, "--port", String(port)]);
    assert.equal(result.status, 1, result.stderr);
    assert.match(result.stderr, new RegExp(`port ${port + 4} on 127\\.0\\.0\\.1 is in use`));
    assert.match(result.stderr, /--port/);
    assert.equal(existsSync(join(dir, "node0")), false, "no node was started");
  } finally {
    squatter.close();
    rmSync(dir, { recursive: true, force: true });
  }
});
