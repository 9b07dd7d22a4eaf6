import assert from "node:assert/strict";
import { test } from "node:test";
import { CocoClientError } from "../../src/client/index.ts";
import { budget } from "../e2e/waits.ts";
import { stopAndAuditLedgers } from "../helpers/audit.ts";
import { Cluster } from "../helpers/cluster.ts";
import { govClient, validFrom } from "../helpers/network.ts";

test("a node joins an open service as Pending, is trusted by vote, catches up; another is retired by vote", {
  timeout: budget(120_000),
}, async () => {
  const cluster = await Cluster.create();
  try {
    const n0 = await cluster.startService({ openAtNodes: 2 });
    const n1 = await cluster.join("n1", n0);
    await cluster.untilOpen();
    for (let i = 0; i < 20; i++) {
      const res = await cluster.call(n0, "PUT", `/app/log/private?id=${i}`, { body: { msg: `v${i}` } });
      assert.equal(res.status, 200);
    }
    // The service is open: a new joiner waits, pending, until the members vote to trust it.
    const joining = cluster.join("n2", n1);
    const pendingId = await cluster.pendingNode(n0);

    // No one changes the configuration alone: the former member endpoint is gone, and a user
    // (not a member) cannot even propose.
    for (const path of [`/node/trust?node_id=${pendingId}`, `/node/retire?node_id=${n1.node.nodeId}`]) {
      assert.equal((await cluster.call(n0, "POST", path, { as: "member" })).status, 404, path);
    }
    const asUser = govClient(cluster.url(n0, ""), n0.node.identity.serviceCertPem, cluster.user);
    try {
      const refused = await asUser
        .propose({ actions: [{ name: "transition_node_to_trusted", args: { node_id: pendingId } }] })
        .catch((e: unknown) => e);
      assert.ok(refused instanceof CocoClientError, String(refused));
      assert.equal(refused.status, 401);
      assert.equal(refused.code, "UnknownKid");
    } finally {
      await asUser.close();
    }
    const pendingRow = async () =>
      (
        (await cluster.call(n0, "GET", "/node/network/nodes")).json().nodes as Array<{
          node_id: string;
          status: string;
        }>
      ).find((n) => n.node_id === pendingId);
    assert.equal((await pendingRow())?.status, "Pending", "a refused proposal changes nothing");

    // Sent to a backup, the proposal and the ballot are redirected to the primary.
    const backup = [n0, n1].find((n) => !n.node.isPrimary)!;
    const trusted = await cluster.trustNode(pendingId, backup);
    assert.equal(trusted.proposalState, "Accepted");
    assert.equal((await pendingRow())?.status, "Trusted");
    const n2 = await joining;
    await cluster.until("n2 has caught up", () => n2.node.state.commitSeqno >= n0.node.state.commitSeqno);
    assert.deepEqual((await cluster.call(n2, "GET", "/app/log/private?id=19")).json(), { msg: "v19" });

    // Retire n1 by vote: the service goes on with n0 and n2, and writes through n2 still commit.
    const retired = await cluster.retireNode(n1.node.nodeId);
    assert.equal(retired.proposalState, "Accepted");
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
    // The constitution refuses a malformed node id before anything is stored.
    const gov = await cluster.gov();
    for (const name of ["remove_node", "transition_node_to_trusted"]) {
      const bad = await gov
        .propose({ actions: [{ name, args: { node_id: "zz", valid_from: validFrom() } }] })
        .catch((e: unknown) => e);
      assert.ok(bad instanceof CocoClientError, String(bad));
      assert.equal(bad.status, 400, name);
      assert.equal(bad.code, "ProposalFailedToValidate", name);
    }
    // A join, a trust vote, a retirement: every node's ledger audits clean, the retired one's too.
    assert.equal(await stopAndAuditLedgers(cluster.nodes), 3);
  } finally {
    await cluster.stop();
  }
});
