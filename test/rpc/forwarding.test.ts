import assert from "node:assert/strict";
import { createHash, X509Certificate } from "node:crypto";
import { after, before, describe, test } from "node:test";
import { Agent, request } from "undici";
import { createIdentityCertificate } from "../../src/crypto/index.ts";
import type { RunningNode } from "../../src/node/index.ts";
import { Cluster } from "../helpers/cluster.ts";
import { makeIdentity, passProposal } from "../helpers/network.ts";

/** Three nodes in this process: the primary, a forwarding backup and a redirecting one. */
describe("backups and the primary", () => {
  let cluster: Cluster;
  const forwarding = () =>
    cluster.nodes.find((n) => !n.node.isPrimary && n.node.config.rpc.forwarding === "forward")!;

  before(async () => {
    cluster = await Cluster.create();
    const n0 = await cluster.startService({ openAtNodes: 3 });
    await Promise.all([cluster.join("n1", n0), cluster.join("n2", n0, { rpc: { forwarding: "redirect" } })]);
    await cluster.until("the service is open on every node", async () => {
      for (const node of cluster.nodes)
        if ((await cluster.call(node, "GET", "/node/ready/app")).status !== 204) return false;
      return true;
    });
  });
  after(async () => {
    await cluster.stop();
  });

  test("a write sent to a backup commits on the primary; the same transaction id comes back", async () => {
    const primary = cluster.primary()!;
    const backup = forwarding();
    const put = await cluster.call(backup, "PUT", "/app/log/private?id=7", {
      body: { msg: "through a backup" },
      headers: { "x-coco-wait": "commit" },
    });
    assert.equal(put.status, 200, put.text);
    const txid = put.headers["x-ms-ccf-transaction-id"] as string;
    assert.match(txid, /^\d+\.\d+$/);
    assert.equal(
      (await cluster.call(primary, "GET", `/app/tx?transaction_id=${txid}`)).json().status,
      "Committed",
    );
    // The session was forwarded, so its reads go to the primary too and see the write at once.
    assert.deepEqual((await cluster.call(backup, "GET", "/app/log/private?id=7")).json(), {
      msg: "through a backup",
    });
  });

  test("the primary checks a forwarded caller certificate's dates on every call, not only the first", async () => {
    const primary = cluster.primary()!;
    const backup = forwarding();
    const serve = (der: Uint8Array) =>
      (
        primary.node as unknown as {
          peers: { serve(from: string, m: unknown): Promise<{ status: number; body: Uint8Array }> };
        }
      ).peers.serve(backup.node.nodeId, {
        kind: "forwarded_call",
        method: "GET",
        url: "/app/log/private?id=7",
        headers: {},
        body: new Uint8Array(0),
        callerCert: der,
      });
    const der = (pem: string) => new Uint8Array(new X509Certificate(pem).raw);
    const day = 86_400_000;
    const expired = await createIdentityCertificate({
      name: "user0",
      now: new Date(Date.now() - 2 * day),
      serial: crypto.getRandomValues(new Uint8Array(16)),
      validityDays: 1,
    });
    for (let i = 0; i < 2; i++) {
      assert.equal((await serve(der(cluster.user.certPem))).status, 200, `valid, call ${i}`);
      const refused = await serve(der(expired.certPem));
      assert.equal(refused.status, 401, `expired, call ${i}`);
      assert.match(Buffer.from(refused.body).toString(), /expired/);
    }
    assert.equal((await serve(new Uint8Array([48, 3, 2, 1, 0]))).status, 400, "not a certificate");
    // Who a forwarded certificate names follows the users map: added, it is served; removed, no more.
    const added = await makeIdentity("user-added");
    assert.equal((await serve(der(added.certPem))).status, 401, "not yet a user");
    const gov = await cluster.gov();
    await passProposal(gov, "set_user", { cert: added.certPem });
    assert.equal((await serve(der(added.certPem))).status, 200, "a user now");
    const userId = createHash("sha256").update(der(added.certPem)).digest("hex");
    await passProposal(gov, "remove_user", { user_id: userId });
    assert.equal((await serve(der(added.certPem))).status, 401, "removed");
  });

  test("a linearizable read on a backup reflects the latest committed write, without a write", async () => {
    const primary = cluster.primary()!;
    await cluster.call(primary, "PUT", "/app/log/public?id=21", {
      body: { msg: "latest" },
      headers: { "x-coco-wait": "commit" },
    });
    const before = primary.node.state.store.version;
    // A fresh connection, so no earlier forwarding makes this session sticky.
    const user = cluster.user;
    const fresh = new Agent({
      connect: { ca: primary.node.identity.serviceCertPem, cert: user.certPem, key: user.privateKeyPem },
    });
    try {
      const read = await request(cluster.url(forwarding(), "/app/log/public?id=21"), {
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
    const primary = cluster.primary()!;
    const redirecting = cluster.nodes.find((n) => n.node.config.rpc.forwarding === "redirect") as RunningNode;
    assert.equal(redirecting.node.isPrimary, false, "the first node campaigned alone and leads");
    const res = await cluster.call(redirecting, "PUT", "/app/log/private?id=8", { body: { msg: "x" } });
    assert.equal(res.status, 307);
    assert.equal(res.headers.location, `https://127.0.0.1:${primary.port}/app/log/private?id=8`);
  });

  test("unknown callers are refused by the backup before anything is forwarded", async () => {
    const stranger = await makeIdentity("stranger");
    const agent = new Agent({
      connect: {
        ca: cluster.nodes[0]!.node.identity.serviceCertPem,
        cert: stranger.certPem,
        key: stranger.privateKeyPem,
      },
    });
    try {
      const res = await request(cluster.url(forwarding(), "/app/log/private?id=9"), {
        method: "PUT",
        dispatcher: agent,
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ msg: "x" }),
      });
      await res.body.dump();
      assert.equal(res.statusCode, 401);
    } finally {
      await agent.close();
    }
  });
});
