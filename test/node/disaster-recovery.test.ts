import assert from "node:assert/strict";
import { generateKeyPairSync } from "node:crypto";
import { cpSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { GovClient } from "../../src/client/index.ts";
import { normalizePem, verifyJsonReceipt } from "../../src/crypto/index.ts";
import { auditLedger } from "../../src/node/index.ts";
import type { RunningNode } from "../../src/node/run.ts";
import { decryptShare, toBase64 } from "../../src/recovery/index.ts";
import { budget } from "../e2e/waits.ts";
import { Cluster } from "../helpers/cluster.ts";
import { makeIdentity, VOTE_YES } from "../helpers/network.ts";

interface RecoveryMember {
  certPem: string;
  keyPem: string;
  encryptionKeyPem: string;
}

function govFor(node: RunningNode, serviceCertPem: string, m: RecoveryMember): GovClient {
  return new GovClient({
    url: `https://127.0.0.1:${node.port}`,
    serviceCertPem,
    memberCertPem: m.certPem,
    memberKeyPem: m.keyPem,
  });
}

async function until(
  what: string,
  check: () => Promise<boolean> | boolean,
  timeoutMs = 20_000,
): Promise<void> {
  const deadline = Date.now() + budget(timeoutMs);
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting until ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

test("disaster recovery: every node lost; a new service from one ledger, k shares bring the private data back", {
  timeout: budget(120_000),
}, async () => {
  const cluster = await Cluster.create();
  const clients: GovClient[] = [];
  try {
    // Two recovery members (members with encryption keys), besides member0.
    const members: RecoveryMember[] = [];
    const configured: Array<{ cert: string; encryptionPublicKey?: string }> = [{ cert: "member0_cert.pem" }];
    for (const name of ["r1", "r2"]) {
      const identity = await makeIdentity(name);
      const enc = generateKeyPairSync("rsa", { modulusLength: 2048 });
      writeFileSync(join(cluster.dir, `${name}_cert.pem`), identity.certPem);
      writeFileSync(
        join(cluster.dir, `${name}_enc_pubk.pem`),
        enc.publicKey.export({ type: "spki", format: "pem" }),
      );
      configured.push({ cert: `${name}_cert.pem`, encryptionPublicKey: `${name}_enc_pubk.pem` });
      members.push({
        certPem: identity.certPem,
        keyPem: identity.privateKeyPem,
        encryptionKeyPem: String(enc.privateKey.export({ type: "pkcs8", format: "pem" })),
      });
    }
    // member0 (the helper's member, which trusts joiners by vote) is not a member of this
    // service; the development option trusts its two joiners while it is Opening.
    const n0 = await cluster.startService({
      members: configured,
      openAtNodes: 3,
      attestation: { platform: "virtual", virtual: { trustJoinersWhileOpening: true } },
    });
    const n1 = await cluster.join("n1", n0);
    const n2 = await cluster.join("n2", n0);
    await cluster.until(
      "the service is open",
      async () => (await cluster.call(n0, "GET", "/node/ready/app")).status === 204,
    );
    const oldCert = n0.node.identity.serviceCertPem;
    for (const m of members) {
      const gov = govFor(cluster.primary()!, oldCert, m);
      clients.push(gov);
      await gov.activate();
    }
    // Both recovery members are needed: threshold 2 (2 of the 2 active members vote).
    const raise = await clients[0]!.propose({
      actions: [{ name: "set_recovery_threshold", args: { recovery_threshold: 2 } }],
    });
    await clients[0]!.vote(raise.proposalId, VOTE_YES);
    assert.equal((await clients[1]!.vote(raise.proposalId, VOTE_YES)).proposalState, "Accepted");
    await until("shares at threshold 2", async () => {
      const share = await clients[0]!.encryptedShare().catch(() => undefined);
      return (
        share !== undefined &&
        n0.node.state.store.read("public:ccf.internal.recovery_shares", new Uint8Array(8)) !== undefined &&
        JSON.parse(
          new TextDecoder().decode(
            n0.node.state.store.read("public:ccf.internal.recovery_shares", new Uint8Array(8))!,
          ),
        ).threshold === 2
      );
    });

    let oldTxid = "";
    for (let i = 0; i < 10; i++) {
      const priv = await cluster.call(cluster.primary()!, "PUT", `/app/log/private?id=${i}`, {
        body: { msg: `secret ${i}` },
        headers: { "x-coco-wait": "commit" },
      });
      assert.equal(priv.status, 200, priv.text);
      if (i === 3) oldTxid = String(priv.headers["x-ms-ccf-transaction-id"]);
      const pub = await cluster.call(cluster.primary()!, "PUT", `/app/log/public?id=${i}`, {
        body: { msg: `public ${i}` },
        headers: { "x-coco-wait": "commit" },
      });
      assert.equal(pub.status, 200, pub.text);
    }
    const oldReceipt = (
      await cluster.call(cluster.primary()!, "GET", `/app/receipt?transaction_id=${oldTxid}`)
    ).json();
    assert.equal(verifyJsonReceipt(oldReceipt, oldCert).ok, true);
    await until(
      "n1 has everything committed",
      () => n1.node.state.commitSeqno >= cluster.primary()!.node.state.commitSeqno,
    );

    // Every node is lost. One node's ledger survives.
    for (const c of clients.splice(0)) await c.close();
    for (const node of [n0, n1, n2]) await node.stop();
    cluster.nodes.length = 0;
    writeFileSync(join(cluster.dir, "previous_service_cert.pem"), oldCert);
    cpSync(join(cluster.dir, "n1", "ledger"), join(cluster.dir, "r0", "ledger"), { recursive: true });

    const r0 = await cluster.start("r0", {
      recover: { previousServiceCertFile: "previous_service_cert.pem" },
      serviceCertFile: "recovered_service_cert.pem",
    });
    const newCert = readFileSync(join(cluster.dir, "recovered_service_cert.pem"), "utf8");
    await cluster.resetAgents();
    assert.notEqual(newCert, oldCert, "a recovered service has a new identity");
    const gov = members.map((m) => govFor(r0, newCert, m));
    clients.push(...gov);
    const info = await gov[0]!.get<{ status: string; previousServiceIdentity?: string }>("/gov/service/info");
    assert.equal(info.status, "Recovering");
    assert.equal(normalizePem(info.previousServiceIdentity ?? ""), normalizePem(oldCert));
    const nodes = await gov[0]!.get<{ value: Array<{ nodeId: string; status: string }> }>(
      "/gov/service/nodes",
    );
    assert.deepEqual(
      nodes.value.filter((n) => n.status === "Trusted").map((n) => n.nodeId),
      [r0.node.nodeId],
      "the lost nodes are retired; the recovering node is the only one trusted",
    );
    const call = (path: string) => cluster.call(r0, "GET", path);
    assert.deepEqual(
      (await call("/app/log/public?id=7")).json(),
      { msg: "public 7" },
      "the public state is back at once",
    );
    assert.equal((await call("/app/log/private?id=7")).status, 404, "the private state needs the shares");

    // Members vote the recovered service open; it then waits for shares.
    const open = await gov[0]!.propose({
      actions: [
        {
          name: "transition_service_to_open",
          args: { previous_service_identity: oldCert, next_service_identity: newCert },
        },
      ],
    });
    await gov[0]!.vote(open.proposalId, VOTE_YES);
    assert.equal((await gov[1]!.vote(open.proposalId, VOTE_YES)).proposalState, "Accepted");
    assert.equal(
      (await gov[0]!.get<{ status: string }>("/gov/service/info")).status,
      "WaitingForRecoveryShares",
    );

    const share0 = decryptShare(await gov[0]!.encryptedShare(), members[0]!.encryptionKeyPem);
    const share1 = decryptShare(await gov[1]!.encryptedShare(), members[1]!.encryptionKeyPem);
    const wrong = await gov[1]!
      .submitShare(toBase64(share0))
      .catch((e: { status: number; code: string }) => e);
    assert.equal(
      (wrong as { status: number }).status,
      400,
      "a share that is not the member's own is refused",
    );
    assert.match((await gov[0]!.submitShare(toBase64(share0))).message, /1\/2/);
    assert.equal((await call("/app/log/private?id=7")).status, 404, "fewer than k shares open nothing");
    assert.match((await gov[1]!.submitShare(toBase64(share1))).message, /2\/2/);
    await until(
      "the service is open again",
      async () => (await gov[0]!.get<{ status: string }>("/gov/service/info")).status === "Open",
    );
    for (let i = 0; i < 10; i++) {
      assert.deepEqual(
        (await call(`/app/log/private?id=${i}`)).json(),
        { msg: `secret ${i}` },
        `private ${i}`,
      );
      assert.deepEqual((await call(`/app/log/public?id=${i}`)).json(), { msg: `public ${i}` }, `public ${i}`);
    }
    // An old transaction's receipt, from the recovered service, verifies with the new certificate
    // alone (the new service endorses the previous identity); the one issued before still verifies.
    const recovered = await call(`/app/receipt?transaction_id=${oldTxid}`);
    assert.equal(recovered.status, 200, recovered.text);
    const viaNew = verifyJsonReceipt(recovered.json(), newCert);
    assert.equal(viaNew.ok, true, JSON.stringify(viaNew));
    assert.equal(verifyJsonReceipt(oldReceipt, oldCert).ok, true);
    const write = await cluster.call(r0, "PUT", "/app/log/private?id=100", {
      body: { msg: "after recovery" },
      headers: { "x-coco-wait": "commit" },
    });
    assert.equal(write.status, 200, write.text);

    // It restarts like any node: every secret, old and new, is sealed in its identity.
    await r0.stop();
    cluster.nodes.length = 0;
    const again = await cluster.start("r0", {
      recover: { previousServiceCertFile: "previous_service_cert.pem" },
      serviceCertFile: "recovered_service_cert.pem",
      nodeAddress: `127.0.0.1:${r0.node.config.nodeAddress.port}`,
      rpc: { address: `127.0.0.1:${r0.port}` },
    });
    await cluster.until(
      "the restarted node serves",
      async () => (await cluster.call(again, "GET", "/node/ready/app")).status === 204,
    );
    assert.deepEqual((await cluster.call(again, "GET", "/app/log/private?id=3")).json(), { msg: "secret 3" });
    assert.deepEqual((await cluster.call(again, "GET", "/app/log/private?id=100")).json(), {
      msg: "after recovery",
    });

    // The whole ledger, old service and recovered one, audits clean against the new certificate:
    // each signature by a node trusted at that point, under the identity recorded there.
    await again.node.flush();
    const audit = await auditLedger(join(cluster.dir, "r0", "ledger"), newCert);
    assert.equal(audit.ok, true, JSON.stringify(audit.failure));
    assert.ok(audit.verifiedThrough > Number(oldTxid.split(".")[1]));
    const withOld = await auditLedger(join(cluster.dir, "r0", "ledger"), oldCert);
    assert.match(withOld.failure?.message ?? "", /last signature is not the service certificate given/);
  } finally {
    for (const c of clients) await c.close();
    await cluster.stop();
  }
});
