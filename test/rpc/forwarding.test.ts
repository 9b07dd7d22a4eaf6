import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { Agent, request } from "undici";
import { builtInApp } from "../../src/cli/apps.ts";
import {
  createLogger,
  parseConfig,
  type RunningNode,
  realEnvironment,
  runNode,
} from "../../src/node/index.ts";
import { freePort } from "../helpers/cli.ts";
import { type Identity, makeIdentity } from "../helpers/network.ts";

/** Two nodes in this process: a primary, and a backup that joined it (redirecting or forwarding). */
describe("a backup forwards writes to the primary", () => {
  let dir: string;
  let user: Identity;
  const nodes: RunningNode[] = [];
  let agent: Agent;

  const start = async (name: string, { rpc, ...settings }: Record<string, unknown>) => {
    const config = parseConfig(
      {
        dir: name,
        rpc: { address: `127.0.0.1:${await freePort()}`, ...(rpc as object | undefined) },
        nodeAddress: `127.0.0.1:${await freePort()}`,
        app: "logging",
        log: { level: "error" },
        ...settings,
      },
      dir,
    );
    const running = await runNode(
      config,
      realEnvironment,
      createLogger({ level: "error", format: "json" }),
      builtInApp("logging"),
    );
    nodes.push(running);
    return running;
  };
  const url = (node: RunningNode, path: string) => `https://127.0.0.1:${node.port}${path}`;
  const waitOpen = async (node: RunningNode) => {
    for (let i = 0; i < 200; i++) {
      const res = await request(url(node, "/node/ready/app"), { dispatcher: agent });
      await res.body.dump();
      if (res.statusCode === 204) return;
      await new Promise((r) => setTimeout(r, 50));
    }
    throw new Error("node did not become ready");
  };

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), "coco-fwd-"));
    user = await makeIdentity("user0");
    writeFileSync(join(dir, "member0_cert.pem"), (await makeIdentity("member0")).certPem);
    writeFileSync(join(dir, "user0_cert.pem"), user.certPem);
    const primary = await start("n0", {
      members: [{ cert: "member0_cert.pem" }],
      users: [{ cert: "user0_cert.pem" }],
      openAtNodes: 3,
    });
    const target = { target: `127.0.0.1:${primary.port}`, serviceCertFile: "service_cert.pem" };
    await Promise.all([
      start("n1", { join: target }),
      start("n2", { join: target, rpc: { forwarding: "redirect" } }),
    ]);
    agent = new Agent({
      connect: { ca: primary.node.identity.serviceCertPem, cert: user.certPem, key: user.privateKeyPem },
    });
    for (const node of nodes) await waitOpen(node);
  });
  after(async () => {
    await agent?.close();
    for (const node of nodes.reverse()) await node.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  test("a write sent to a backup commits on the primary; the same transaction id comes back", async () => {
    const primary = nodes.find((n) => n.node.isPrimary)!;
    const backup = nodes.find((n) => !n.node.isPrimary && n.node.config.rpc.forwarding === "forward")!;
    assert.ok(primary && backup);
    const put = await request(url(backup, "/app/log/private?id=7"), {
      method: "PUT",
      dispatcher: agent,
      headers: { "content-type": "application/json", "x-coco-wait": "commit" },
      body: JSON.stringify({ msg: "through a backup" }),
    });
    assert.equal(put.statusCode, 200, await put.body.text());
    const txid = put.headers["x-ms-ccf-transaction-id"] as string;
    assert.match(txid, /^\d+\.\d+$/);
    const status = await request(url(primary, `/app/tx?transaction_id=${txid}`), { dispatcher: agent });
    assert.equal(((await status.body.json()) as { status: string }).status, "Committed");
    // The session was forwarded, so its reads go to the primary too and see the write at once.
    const read = await request(url(backup, "/app/log/private?id=7"), { dispatcher: agent });
    assert.deepEqual(await read.body.json(), { msg: "through a backup" });
  });

  test("a linearizable read on a backup reflects the latest committed write, without a write", async () => {
    const primary = nodes.find((n) => n.node.isPrimary)!;
    const backup = nodes.find((n) => !n.node.isPrimary && n.node.config.rpc.forwarding === "forward")!;
    const put = await request(url(primary, "/app/log/public?id=21"), {
      method: "PUT",
      dispatcher: agent,
      headers: { "content-type": "application/json", "x-coco-wait": "commit" },
      body: JSON.stringify({ msg: "latest" }),
    });
    await put.body.dump();
    const before = primary.node.state.store.version;
    // A fresh connection, so no earlier forwarding makes this session sticky.
    const fresh = new Agent({
      connect: { ca: primary.node.identity.serviceCertPem, cert: user.certPem, key: user.privateKeyPem },
    });
    try {
      const read = await request(url(backup, "/app/log/public?id=21"), {
        dispatcher: fresh,
        headers: { "x-coco-read": "linearizable" },
      });
      assert.equal(read.statusCode, 200);
      assert.deepEqual(await read.body.json(), { msg: "latest" });
    } finally {
      await fresh.close();
    }
    assert.equal(primary.node.state.store.version, before, "the read wrote nothing");
  });

  test("in redirect mode a backup answers 307 with the primary's address", async () => {
    const primary = nodes.find((n) => n.node.isPrimary)!;
    const redirecting = nodes.find((n) => !n.node.isPrimary && n.node.config.rpc.forwarding === "redirect");
    if (!redirecting) return; // the redirecting node happens to be primary; nothing to redirect
    const res = await request(url(redirecting, "/app/log/private?id=8"), {
      method: "PUT",
      dispatcher: agent,
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ msg: "x" }),
    });
    await res.body.dump();
    assert.equal(res.statusCode, 307);
    assert.equal(res.headers.location, `https://127.0.0.1:${primary.port}/app/log/private?id=8`);
  });

  test("unknown callers are refused by the backup before anything is forwarded", async () => {
    const stranger = await makeIdentity("stranger");
    const strangerAgent = new Agent({
      connect: {
        ca: nodes[0]!.node.identity.serviceCertPem,
        cert: stranger.certPem,
        key: stranger.privateKeyPem,
      },
    });
    try {
      const backup = nodes.find((n) => !n.node.isPrimary)!;
      const res = await request(url(backup, "/app/log/private?id=9"), {
        method: "PUT",
        dispatcher: strangerAgent,
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ msg: "x" }),
      });
      await res.body.dump();
      assert.equal(res.statusCode, 401);
    } finally {
      await strangerAgent.close();
    }
  });
});
