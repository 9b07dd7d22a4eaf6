import assert from "node:assert/strict";
import { generateKeyPairSync, X509Certificate } from "node:crypto";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { parseJsonBytes, type ServiceInfo, SINGLETON_KEY, Tables, utf8 } from "../../src/ledger/index.ts";
import type { RunningNode } from "../../src/node/index.ts";
import { RECOVERY_SHARES_TABLE, type RecoverySharesRecord } from "../../src/node/recovery-shares.ts";
import { budget } from "../e2e/waits.ts";
import { Cluster } from "../helpers/cluster.ts";
import { VOTE_YES, validFrom } from "../helpers/network.ts";
import { cutOff, QUICK_ELECTIONS, threeNodes } from "../helpers/partition.ts";

// What a node hands out or acts on comes from the commit point, never from state a view change
// may still roll back: a primary cut off from its backups applies a recovery share set and
// certificate renewals that cannot commit; members are given the committed shares and the node
// keeps serving its committed certificates until the new ones commit (real TLS, 3 nodes).

/** Member0's share as `node`'s store has it now, committed or not. */
function latestShare(node: RunningNode, memberId: string): string | undefined {
  const bytes = node.node.state.store.read(RECOVERY_SHARES_TABLE, SINGLETON_KEY);
  return bytes ? parseJsonBytes<RecoverySharesRecord>(bytes).shares[memberId] : undefined;
}

/** Lets `node` run `ticks` more ticks (each checks for renewed certificates). */
async function ticksPass(cluster: Cluster, node: RunningNode, ticks: number): Promise<void> {
  const certificates = (node.node as unknown as { certificates: { check(): void } }).certificates;
  const check = certificates.check.bind(certificates);
  let seen = 0;
  certificates.check = () => {
    seen++;
    check();
  };
  try {
    await cluster.until(`${ticks} ticks`, () => seen >= ticks);
  } finally {
    certificates.check = check;
  }
}

test("a member is given its share of the committed set, not of a set that may be rolled back", {
  timeout: budget(120_000),
}, async () => {
  const cluster = await Cluster.create();
  try {
    const enc = generateKeyPairSync("rsa", { modulusLength: 2048 });
    writeFileSync(
      join(cluster.dir, "member0_enc_pubk.pem"),
      enc.publicKey.export({ type: "spki", format: "pem" }),
    );
    const members = [{ cert: "member0_cert.pem", encryptionPublicKey: "member0_enc_pubk.pem" }];
    const { primary, others } = await threeNodes(cluster, { members });
    const gov = await cluster.gov(primary);
    const shareFrom = async (node: RunningNode) => {
      const res = await cluster.call(
        node,
        "GET",
        `/gov/recovery/encrypted-shares/${gov.memberId}?api-version=2024-07-01`,
        {
          as: "member",
        },
      );
      return res.status === 200 ? (res.json().encryptedShare as string) : `${res.status}: ${res.text}`;
    };
    let committed = "";
    await cluster.until("the shares issued at opening are committed and served", async () => {
      committed = await shareFrom(primary);
      return committed === latestShare(primary, gov.memberId);
    });

    for (const id of ["constructor", "__proto__", "0".repeat(64)]) {
      const res = await cluster.call(
        primary,
        "GET",
        `/gov/recovery/encrypted-shares/${id}?api-version=2024-07-01`,
        {
          as: "member",
        },
      );
      assert.equal(res.status, 404, `${id}: ${res.text}`);
    }

    const cut = cutOff(primary, others);
    await primary.node.recoveryShares.refresh();
    const uncommitted = latestShare(primary, gov.memberId);
    assert.ok(uncommitted && uncommitted !== committed, "the cut-off primary applied a new share set");
    for (const node of cluster.nodes) {
      assert.equal(await shareFrom(node), committed, `${node.node.nodeId}: the committed share`);
    }
    assert.ok(primary.node.isPrimary && others.every((n) => !n.node.isPrimary), "no election meanwhile");

    cut.heal();
    for (const node of cluster.nodes) {
      await cluster.until(
        "the new share set is served once it commits",
        async () => (await shareFrom(node)) === uncommitted,
        budget(30_000),
      );
    }
  } finally {
    await cluster.stop();
  }
});

test("a node serves renewed certificates only once the renewal commits", {
  timeout: budget(120_000),
}, async () => {
  const cluster = await Cluster.create();
  try {
    const { primary, others } = await threeNodes(cluster);
    const gov = await cluster.gov(primary);
    const before = { ...primary.node.identity };
    const pinnedFile = join(cluster.dir, "service_cert.pem");
    const pinned = readFileSync(pinnedFile, "utf8");
    const proposal = await gov.propose({
      actions: [
        {
          name: "set_node_certificate_validity",
          args: { node_id: primary.node.nodeId, valid_from: validFrom(), validity_period_days: 3 },
        },
        {
          name: "set_service_certificate_validity",
          args: { valid_from: validFrom(), validity_period_days: 30 },
        },
      ],
    });
    assert.equal(proposal.proposalState, "Open");

    const cut = cutOff(primary, others);
    // The vote that renews both cannot commit while the primary is cut off: it is left to settle
    // in the background.
    const voting = gov.vote(proposal.proposalId, VOTE_YES).catch((e: unknown) => e);
    const store = primary.node.state.store;
    const latest = () => {
      const endorsed = store.read(Tables.nodesEndorsedCertificates, utf8(primary.node.nodeId));
      const info = store.read(Tables.serviceInfo, SINGLETON_KEY);
      return {
        nodeCertPem: endorsed ? new TextDecoder().decode(endorsed) : undefined,
        serviceCertPem: info ? parseJsonBytes<ServiceInfo>(info).cert : undefined,
      };
    };
    await cluster.until("the cut-off primary has applied both renewals", () => {
      const { nodeCertPem, serviceCertPem } = latest();
      return nodeCertPem !== before.nodeCertPem && serviceCertPem !== before.serviceCertPem;
    });
    const renewed = latest();
    // Every tick looks for renewals: a few of them pass with the renewals applied, not committed.
    await ticksPass(cluster, primary, 5);
    assert.equal(
      primary.node.identity.nodeCertPem,
      before.nodeCertPem,
      "the uncommitted node certificate is served",
    );
    assert.equal(
      primary.node.identity.serviceCertPem,
      before.serviceCertPem,
      "the uncommitted service certificate is served",
    );
    assert.equal(
      readFileSync(pinnedFile, "utf8"),
      pinned,
      "the pinned service certificate file was rewritten",
    );
    assert.ok(primary.node.isPrimary && others.every((n) => !n.node.isPrimary), "no election meanwhile");

    cut.heal();
    for (const node of cluster.nodes) {
      await cluster.until(
        `${node.node.nodeId.slice(0, 8)} serves the renewed service certificate once it commits`,
        () => node.node.identity.serviceCertPem === renewed.serviceCertPem,
        budget(30_000),
      );
    }
    assert.equal(primary.node.identity.nodeCertPem, renewed.nodeCertPem);
    assert.equal(
      new X509Certificate(readFileSync(pinnedFile, "utf8")).fingerprint256,
      new X509Certificate(renewed.serviceCertPem!).fingerprint256,
    );
    await voting;
  } finally {
    await cluster.stop();
  }
});

test("a renewal that a view change rolls back is never served", {
  timeout: budget(180_000),
}, async () => {
  const cluster = await Cluster.create();
  try {
    // Elections after 3 to 4 s: time enough to apply the renewal on the cut-off primary first.
    const { primary, others } = await threeNodes(cluster, {}, QUICK_ELECTIONS);
    const served: string[] = [];
    primary.node.onCertificatesRenewed(({ nodeCertPem }) => served.push(nodeCertPem));
    const gov = await cluster.gov(primary);
    const before = primary.node.identity.nodeCertPem;
    const args = { node_id: primary.node.nodeId, valid_from: validFrom(), validity_period_days: 3 };
    const proposal = await gov.propose({ actions: [{ name: "set_node_certificate_validity", args }] });
    assert.equal(proposal.proposalState, "Open");
    const cut = cutOff(primary, others);
    const voting = gov.vote(proposal.proposalId, VOTE_YES).catch((e: unknown) => e);
    const endorsed = () => primary.node.endorsedCertificate(primary.node.nodeId);
    await cluster.until("the cut-off primary has applied the renewal", () => endorsed() !== before);
    const rolledBack = endorsed();
    await ticksPass(cluster, primary, 5);
    await cluster.until(
      "another node is elected",
      () => others.some((n) => n.node.isPrimary),
      budget(60_000),
    );
    cut.heal();
    await cluster.until(
      "the old primary rolled the renewal back",
      () => endorsed() === before,
      budget(60_000),
    );
    await voting;
    await ticksPass(cluster, primary, 5);
    assert.ok(!served.includes(rolledBack!), "the rolled-back certificate was served");
    assert.equal(primary.node.identity.nodeCertPem, before);
    assert.equal(primary.node.certificateProblem, undefined);
  } finally {
    await cluster.stop();
  }
});
