import assert from "node:assert/strict";
import { test } from "node:test";
import type { RunningNode } from "../../src/node/index.ts";
import { budget } from "../e2e/waits.ts";
import { Cluster } from "../helpers/cluster.ts";
import { joiner, poll } from "../helpers/join-probe.ts";
import { VOTE_YES, validFrom } from "../helpers/network.ts";
import { QUICK_ELECTIONS, threeNodes } from "../helpers/partition.ts";

// A service of three nodes with one down trusts a new node: every quorum of the new
// configuration (four nodes, three needed) then includes the joiner. The primary fails its quorum
// check an election time-out later and steps down, and no node can be elected until the joiner
// runs and votes. The joiner must still be answered Trusted once its trust is settled (held by a
// majority of the old configuration in the primary's view), whatever the primary's role since:
// answered Pending, it would never run, and the service would stall for good.

test("a joiner whose trust settled is answered Trusted after the primary stepped down for want of it", {
  timeout: budget(120_000),
}, async () => {
  const cluster = await Cluster.create();
  try {
    // Elections after 3 to 4 s, so the step-down comes soon.
    const { primary, others } = await threeNodes(cluster, {}, QUICK_ELECTIONS);
    const [down, live] = others as [RunningNode, RunningNode];
    await down.stop();
    cluster.nodes.splice(cluster.nodes.indexOf(down), 1);

    const j = await joiner();
    const first = await poll(primary, j.body);
    assert.equal(first.json.status, "Pending", JSON.stringify(first.json));
    await cluster.until("the Pending joiner is committed", () =>
      live.node.nodes().some(([id, info]) => id === j.nodeId && info.status === "Pending"),
    );
    const gov = await cluster.gov(primary);
    const args = { node_id: j.nodeId, valid_from: validFrom() };
    const proposal = await gov.propose({ actions: [{ name: "transition_node_to_trusted", args }] });
    // The vote's transaction needs the joiner's acknowledgement to commit: left in the background.
    const voting = gov.vote(proposal.proposalId, VOTE_YES).catch((e: unknown) => e);
    const trustedSeqno = await (async () => {
      let seqno = 0;
      await cluster.until("the live backup holds the trust", () => {
        if (!primary.node.nodes().some(([id, info]) => id === j.nodeId && info.status === "Trusted"))
          return false;
        seqno ||= primary.node.state.lastSeqno;
        return (live.node.consensusStatus?.durableSeqno ?? 0) >= seqno;
      });
      return seqno;
    })();
    // The joiner does not ask again until the primary has given up its role.
    await cluster.until(
      "the primary steps down (its new configuration's quorums need the joiner)",
      () => primary.node.consensusStatus?.role !== "primary",
      budget(30_000),
    );
    assert.ok(primary.node.state.commitSeqno < trustedSeqno, "the trust is not committed");
    const answer = await poll(primary, j.body);
    assert.equal(answer.status, 200, JSON.stringify(answer.json));
    assert.equal(answer.json.status, "Trusted", JSON.stringify(answer.json));
    assert.equal(typeof answer.json.node_certificate, "string");
    assert.ok(answer.json.wrapped_secrets, "the joiner is handed what it needs to run");
    await Promise.race([voting, new Promise((r) => setTimeout(r, 10))]);
  } finally {
    await cluster.stop();
  }
});
