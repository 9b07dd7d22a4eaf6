import assert from "node:assert/strict";
import { test } from "node:test";
import { Cluster } from "../helpers/cluster.ts";

test("a node joins an open service as Pending, is trusted by a member, catches up; another retires", {
  timeout: 120_000,
}, async () => {
  const cluster = await Cluster.create();
  try {
    const n0 = await cluster.startService({ openAtNodes: 2 });
    const n1 = await cluster.join("n1", n0);
    await cluster.until("the service is open everywhere", async () => {
      for (const node of cluster.nodes)
        if ((await cluster.call(node, "GET", "/node/ready/app")).status !== 204) return false;
      return true;
    });
    for (let i = 0; i < 20; i++) {
      const res = await cluster.call(n0, "PUT", `/app/log/private?id=${i}`, { body: { msg: `v${i}` } });
      assert.equal(res.status, 200);
    }
    // The service is open: a new joiner waits, pending, for a member to trust it.
    const joining = cluster.join("n2", n1, {
      join: { target: `127.0.0.1:${n1.port}`, serviceCertFile: "service_cert.pem", timeoutMs: 60_000 },
    });
    let pendingId: string | undefined;
    await cluster.until("n2 is recorded as pending", async () => {
      const nodes = (await cluster.call(n0, "GET", "/node/network/nodes")).json().nodes as Array<{
        node_id: string;
        status: string;
      }>;
      pendingId = nodes.find((n) => n.status === "Pending")?.node_id;
      return pendingId !== undefined;
    });
    const byUser = await cluster.call(n0, "POST", `/node/trust?node_id=${pendingId}`);
    assert.equal(byUser.status, 403, "only members change which nodes are trusted");
    const trusted = await cluster.call(n0, "POST", `/node/trust?node_id=${pendingId}`, { as: "member" });
    assert.equal(trusted.status, 200, trusted.text);
    const n2 = await joining;
    await cluster.until("n2 has caught up", () => n2.node.state.commitSeqno >= n0.node.state.commitSeqno);
    assert.deepEqual((await cluster.call(n2, "GET", "/app/log/private?id=19")).json(), { msg: "v19" });

    // Retire n1: the service goes on with n0 and n2, and writes through n2 still commit.
    const retired = await cluster.call(cluster.primary()!, "POST", `/node/retire?node_id=${n1.node.nodeId}`, {
      as: "member",
    });
    assert.equal(retired.status, 200, retired.text);
    await cluster.until("the primary's configuration no longer counts n1", () => {
      const configs = cluster.primary()?.node.consensusStatus?.configs ?? [];
      return configs.length > 0 && configs.every((c) => !c.nodes.includes(n1.node.nodeId));
    });
    // A retired node takes no further part: stop it, and the service carries on without it.
    await n1.stop();
    const write = await cluster.call(n2, "PUT", "/app/log/private?id=100", {
      body: { msg: "after retirement" },
      headers: { "x-coco-wait": "commit" },
    });
    assert.equal(write.status, 200, write.text);
    assert.deepEqual((await cluster.call(n0, "GET", "/app/log/private?id=100")).json(), {
      msg: "after retirement",
    });
    const bad = await cluster.call(cluster.primary()!, "POST", "/node/retire?node_id=zz", { as: "member" });
    assert.equal(bad.status, 400);
  } finally {
    await cluster.stop();
  }
});
