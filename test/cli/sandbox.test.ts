import assert from "node:assert/strict";
import type { ChildProcess } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { Agent, request } from "undici";
import { budget } from "../e2e/waits.ts";
import { coco, cocoBackground, reservePorts } from "../helpers/cli.ts";

/** Waits for `pattern` in the sandbox's output, for `timeoutMs` (an idle machine's) stretched by the load. */
function waitForOutput(child: ChildProcess, pattern: RegExp, timeoutMs = 240_000): Promise<string> {
  return new Promise((resolve, reject) => {
    let output = "";
    const limit = budget(timeoutMs);
    const timer = setTimeout(
      () => reject(new Error(`timed out after ${limit} ms waiting for ${pattern}; output:\n${output}`)),
      limit,
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
  timeout: budget(900_000),
}, async () => {
  const dir = mkdtempSync(join(tmpdir(), "coco-sandbox-"));
  // Three RPC ports, then three node-to-node ports.
  const port = await reservePorts(6);
  let child = cocoBackground(["sandbox", "--dir", dir, "--port", String(port)]);
  try {
    const output = await waitForOutput(child, /Ctrl-C stops the network/);
    assert.match(output, new RegExp(`https://127\\.0\\.0\\.1:${port}`));
    // One line per step, and no node logs in the terminal: they go to each node's log file.
    for (const step of [
      /^ *[0-9.]+ s {2}node0 created the service at https:/m,
      /^ *[0-9.]+ s {2}node1 asked to join \(Pending\)$/m,
      /^ *[0-9.]+ s {2}node2 trusted by member0's vote$/m,
      /^ *[0-9.]+ s {2}node1 joined at https:/m,
      /^ *[0-9.]+ s {2}the service is Open, by member0's vote$/m,
    ]) {
      assert.match(output, step);
    }
    assert.doesNotMatch(output, /INFO|WARN|ECONNREFUSED/);
    assert.equal(output.match(/INSECURE/g)?.length, 1, "one INSECURE notice");
    for (const node of ["node0", "node1", "node2"]) {
      const log = readFileSync(join(dir, node, "node.log"), "utf8");
      assert.match(log, /node is serving/);
      assert.doesNotMatch(log, /peer connection failed/, `${node}: a normal join logs no failed connections`);
    }
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

    // A node that dies is reported, started again, and reported caught up.
    const victim = network.nodes[2];
    process.kill(victim.pid, "SIGKILL");
    await waitForOutput(child, /node2 was killed by SIGKILL; restarting it[\s\S]*node2 caught up \(commit /);
    const restarted = JSON.parse(readFileSync(join(dir, "network.json"), "utf8"));
    assert.notEqual(restarted.nodes[2].pid, victim.pid, "network.json has the new process");
    assert.equal(await stop(child), 0);

    child = cocoBackground(["sandbox", "--dir", dir, "--port", String(port)]);
    await waitForOutput(child, /Ctrl-C stops the network/);
    dispatcher = agent();
    const get = await request(`https://127.0.0.1:${port}/app/log/private?id=42`, { dispatcher });
    assert.equal(get.statusCode, 200);
    assert.deepEqual(await get.body.json(), { msg: "kept across restarts" });
    await dispatcher.close();
    assert.equal(await stop(child), 0);

    // Ctrl-C the moment the network says it is open (before the start has returned) still stops
    // every node: none may outlive the sandbox.
    child = cocoBackground(["sandbox", "--dir", dir, "--port", String(port)]);
    await waitForOutput(child, /Coco sandbox is open/);
    assert.equal(await stop(child), 0);
    const pids = (
      JSON.parse(readFileSync(join(dir, "network.json"), "utf8")) as { nodes: Array<{ pid: number }> }
    ).nodes.map((n) => n.pid);
    const alive = pids.filter((pid) => {
      try {
        process.kill(pid, 0);
        return true;
      } catch {
        return false;
      }
    });
    assert.deepEqual(alive, [], "no node outlives the sandbox");
  } finally {
    // An earlier failure has said what went wrong; a sandbox that exited must not hide it.
    await stop(child).catch(() => {});
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
