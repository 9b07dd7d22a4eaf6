import assert from "node:assert/strict";
import { test } from "node:test";
import { unwrapSecrets } from "../../src/node/join.ts";
import { budget } from "../e2e/waits.ts";
import { Cluster } from "../helpers/cluster.ts";
import { type Answer, joiner, poll } from "../helpers/join-probe.ts";
import { VOTE_YES, validFrom } from "../helpers/network.ts";
import { cutOff, QUICK_ELECTIONS, SLOW_ELECTIONS, threeNodes } from "../helpers/partition.ts";

// A joiner is answered Trusted (certificate, peers, the service's secrets) only from records that
// cannot be rolled back: a trust applied by a primary that no quorum has acknowledged hands out
// nothing, on a real 3-node service (real TLS between the nodes).

/** The Pending joiner, recorded and committed on every node; then `primary` is cut off. */
async function recordAndCutOff(cluster: Cluster) {
  const primary = cluster.primary()!;
  const others = cluster.nodes.filter((n) => n !== primary);
  const j = await joiner();
  const first = await poll(primary, j.body);
  assert.equal(first.status, 200, JSON.stringify(first.json));
  assert.equal(first.json.status, "Pending");
  await cluster.until("the Pending joiner is committed everywhere", () =>
    cluster.nodes.every((n) =>
      n.node.nodes().some(([id, info]) => id === j.nodeId && info.status === "Pending"),
    ),
  );
  const before = primary.node.state.store.version;
  await cluster.until("the record commits", () => primary.node.state.commitSeqno >= before);
  const gov = await cluster.gov(primary);
  const args = { node_id: j.nodeId, valid_from: validFrom() };
  const proposal = await gov.propose({ actions: [{ name: "transition_node_to_trusted", args }] });
  assert.equal(proposal.proposalState, "Open");
  const cut = cutOff(primary, others);
  // The vote that trusts the joiner cannot commit while the primary is cut off: it is left to
  // settle (or time out) in the background.
  const voting = gov.vote(proposal.proposalId, VOTE_YES).catch((e: unknown) => e);
  await cluster.until("the cut-off primary has applied the trust", () =>
    primary.node.nodes().some(([id, info]) => id === j.nodeId && info.status === "Trusted"),
  );
  const uncommitted = primary.node.endorsedCertificate(j.nodeId);
  assert.ok(uncommitted, "the uncommitted trust endorsed a certificate");
  assert.ok(primary.node.isPrimary, "still primary: the test needs the trust applied in its view");
  return { primary, others, j, cut, voting, uncommitted };
}

test("a joiner whose trust is applied but not committed is answered Pending, then Trusted once it commits", {
  timeout: budget(120_000),
}, async () => {
  const cluster = await Cluster.create();
  try {
    // Long election timeouts (10 to 15 s): the cut-off primary stays primary while the test polls.
    await threeNodes(cluster, {}, SLOW_ELECTIONS);
    const { primary, others, j, cut, voting, uncommitted } = await recordAndCutOff(cluster);
    for (let i = 0; i < 5; i++) {
      for (const node of cluster.nodes) {
        const answer = await poll(node, j.body);
        // Pending, or (from a backup) sent on to the primary: nothing handed over either way.
        const redirected =
          answer.status === 503 && (answer.json.error as { code?: string })?.code === "NotPrimary";
        assert.ok(
          answer.json.status === "Pending" || redirected,
          `${node.node.nodeId}: ${JSON.stringify(answer.json)}`,
        );
        assert.equal(answer.json.node_certificate, undefined);
        assert.equal(answer.json.wrapped_secrets, undefined);
        assert.equal(answer.json.peers, undefined);
      }
    }
    assert.ok(primary.node.isPrimary && others.every((n) => !n.node.isPrimary), "no election meanwhile");
    cut.heal();
    let trusted: Answer | undefined;
    await cluster.until(
      "the joiner is answered Trusted",
      async () => {
        trusted = await poll(primary, j.body);
        return trusted.json.status === "Trusted";
      },
      budget(30_000),
    );
    assert.ok(primary.node.state.commitSeqno > 0);
    assert.equal(trusted!.json.node_certificate, uncommitted, "the trust that committed is the one applied");
    for (const node of cluster.nodes) assert.equal(node.node.endorsedCertificate(j.nodeId), uncommitted);
    const secrets = unwrapSecrets(trusted!.json.wrapped_secrets as never, j.encryption.privateKeyPem);
    assert.equal(secrets.service_private_key, primary.node.identity.servicePrivateKeyPem);
    await voting;
  } finally {
    await cluster.stop();
  }
});

test("a joiner never receives the certificate of a trust that was rolled back", {
  timeout: budget(180_000),
}, async () => {
  const cluster = await Cluster.create();
  try {
    // Elections after 3 to 4 s: time enough to apply the trust on the cut-off primary first.
    await threeNodes(cluster, {}, QUICK_ELECTIONS);
    const { primary, others, j, cut, voting, uncommitted } = await recordAndCutOff(cluster);
    const answers: Answer[] = [];
    const askEveryone = async () => {
      for (const node of cluster.nodes) answers.push(await poll(node, j.body));
    };
    await askEveryone();
    // The others elect a new primary; the old one's trust is rolled back once it rejoins them.
    await cluster.until(
      "another node is elected",
      async () => {
        await askEveryone();
        return others.some((n) => n.node.isPrimary);
      },
      budget(60_000),
    );
    cut.heal();
    await cluster.until(
      "the old primary rolled the trust back",
      async () => {
        await askEveryone();
        return primary.node.endorsedCertificate(j.nodeId) === undefined;
      },
      budget(60_000),
    );
    await voting;
    // The members trust it again, in the new primary's view: a new certificate.
    const fresh = cluster.primary()!;
    await cluster.trustNode(j.nodeId, fresh);
    let trusted: Answer | undefined;
    await cluster.until(
      "the joiner is answered Trusted",
      async () => {
        trusted = await poll(cluster.primary()!, j.body);
        answers.push(trusted);
        return trusted.json.status === "Trusted";
      },
      budget(30_000),
    );
    const committed = fresh.node.endorsedCertificate(j.nodeId);
    assert.ok(committed && committed !== uncommitted, "the second trust endorsed another certificate");
    assert.equal(trusted!.json.node_certificate, committed);
    for (const answer of answers) {
      assert.notEqual(
        answer.json.node_certificate,
        uncommitted,
        "the rolled-back certificate was handed out",
      );
      if (answer.json.status !== "Trusted") assert.equal(answer.json.wrapped_secrets, undefined);
    }
  } finally {
    await cluster.stop();
  }
});
