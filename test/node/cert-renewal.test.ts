import assert from "node:assert/strict";
import { X509Certificate } from "node:crypto";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import tls from "node:tls";
import type { RunningNode } from "../../src/node/index.ts";
import { budget } from "../e2e/waits.ts";
import { stopAndAuditLedgers } from "../helpers/audit.ts";
import { Cluster } from "../helpers/cluster.ts";
import { passProposal, validFrom } from "../helpers/network.ts";

const DAY_MS = 86_400_000;

/** The certificate a node presents on a new TLS connection, checked against `ca` (the pinned service cert). */
function servedCertificate(node: RunningNode, ca: string): Promise<X509Certificate> {
  return new Promise((resolve, reject) => {
    const socket = tls.connect({ host: "127.0.0.1", port: node.port, ca, servername: "localhost" }, () => {
      const peer = socket.getPeerX509Certificate();
      socket.destroy();
      if (peer) resolve(peer);
      else reject(new Error("no peer certificate"));
    });
    socket.once("error", reject);
  });
}

const validToMs = (cert: X509Certificate) => new Date(cert.validTo).getTime();

test("members renew node and service certificates by vote; nodes serve them and keep working", {
  timeout: budget(120_000),
}, async () => {
  const cluster = await Cluster.create();
  try {
    // Two nodes, so that trusting a third commits without waiting for it to start.
    const n0 = await cluster.startService({ openAtNodes: 2 });
    await cluster.join("n1", n0);
    await cluster.untilOpen();
    const gov = await cluster.gov(n0);
    const firstServiceCert = n0.node.identity.serviceCertPem;

    // A node joining the open service waits as Pending; trusting it endorses its certificate
    // request for the validity the members chose.
    const joining = cluster.join("n2", n0);
    const pendingId = await cluster.pendingNode(n0);
    const trustedFrom = validFrom();
    const trusted = await passProposal(gov, "transition_node_to_trusted", {
      node_id: pendingId,
      valid_from: trustedFrom,
      validity_period_days: 7,
    });
    assert.equal(trusted.proposalState, "Accepted", JSON.stringify(trusted));
    const n2 = await joining;
    const start = new Date(
      `${trustedFrom.slice(0, 4)}-${trustedFrom.slice(4, 6)}-${trustedFrom.slice(6, 8)}T${trustedFrom.slice(8, 10)}:${trustedFrom.slice(10, 12)}:${trustedFrom.slice(12, 14)}Z`,
    ).getTime();
    await cluster.until("n2 serves the certificate endorsed when it was trusted", async () => {
      const cert = await servedCertificate(n2, firstServiceCert);
      return validToMs(cert) === start + 7 * DAY_MS;
    });
    const write = await cluster.call(n0, "PUT", "/app/log/public?id=1", {
      body: { msg: "one" },
      headers: { "x-coco-wait": "commit" },
    });
    assert.equal(write.status, 200, write.text);
    await cluster.until("n2 replicated the write", async () => {
      return (await cluster.call(n2, "GET", "/app/log/public?id=1")).status === 200;
    });

    // The first node's certificate, for 3 days: served on new connections, carried by signatures.
    const renewed = await passProposal(gov, "set_node_certificate_validity", {
      node_id: n0.node.nodeId,
      valid_from: validFrom(),
      validity_period_days: 3,
    });
    assert.equal(renewed.proposalState, "Accepted", JSON.stringify(renewed));
    await cluster.until("n0 serves its renewed certificate", async () => {
      const cert = await servedCertificate(n0, firstServiceCert);
      return validToMs(cert) - Date.now() < 3 * DAY_MS + 60_000;
    });
    const second = await cluster.call(n0, "PUT", "/app/log/public?id=2", {
      body: { msg: "two" },
      headers: { "x-coco-wait": "commit" },
    });
    assert.equal(second.status, 200, second.text);
    const txid = second.headers["x-ms-ccf-transaction-id"] as string;
    const receipt = (await cluster.call(n0, "GET", `/app/receipt?transaction_id=${txid}`)).json();
    assert.equal(
      new X509Certificate(receipt.cert).validTo,
      new X509Certificate(n0.node.identity.nodeCertPem).validTo,
      "the signature over the new write names the renewed certificate",
    );

    // The service certificate, for 30 days: same key and name, so everything it endorsed still
    // verifies under it; nodes publish it and rewrite the file clients pin.
    const service = await passProposal(gov, "set_service_certificate_validity", {
      valid_from: validFrom(),
      validity_period_days: 30,
    });
    assert.equal(service.proposalState, "Accepted", JSON.stringify(service));
    const info = (
      await cluster.call(n0, "GET", "/gov/service/info?api-version=2024-07-01", { as: "member" })
    ).json();
    const renewedService = new X509Certificate(info.certificate);
    assert.ok(renewedService.publicKey.equals(new X509Certificate(firstServiceCert).publicKey));
    assert.ok(validToMs(renewedService) - Date.now() < 30 * DAY_MS + 60_000);
    for (const node of cluster.nodes) {
      await cluster.until(`${node.node.nodeId.slice(0, 8)} adopted the renewed service certificate`, () => {
        const pinned = new X509Certificate(readFileSync(join(cluster.dir, "service_cert.pem")));
        return (
          new X509Certificate(node.node.identity.serviceCertPem).fingerprint256 ===
            renewedService.fingerprint256 && pinned.fingerprint256 === renewedService.fingerprint256
        );
      });
      await servedCertificate(node, renewedService.toString());
    }
    // Node-to-node channels, new connections included, still authenticate each other.
    const third = await cluster.call(n2, "PUT", "/app/log/public?id=3", {
      body: { msg: "three" },
      headers: { "x-coco-wait": "commit" },
    });
    assert.equal(third.status, 200, third.text);

    // What cannot take effect is refused with the reason (when proposed, or Failed in apply),
    // and changes nothing.
    const before = n0.node.identity.nodeCertPem;
    for (const [name, args, reason] of [
      [
        "set_node_certificate_validity",
        { node_id: n0.node.nodeId, validity_period_days: 400 },
        /more than the 365 days/,
      ],
      ["set_node_certificate_validity", { node_id: n0.node.nodeId, valid_from: "yesterday" }, /ASN\.1 time/],
      ["set_node_certificate_validity", { node_id: "ab".repeat(32) }, /not trusted/],
    ] as const) {
      const failed = await passProposal(gov, name, args).catch((e: Error) => e);
      const text = failed instanceof Error ? failed.message : JSON.stringify(failed.failure ?? failed);
      assert.match(text, reason, name);
    }
    assert.equal(n0.node.identity.nodeCertPem, before);
    // Renewals in flight or done: every node's ledger still audits clean.
    assert.ok((await stopAndAuditLedgers(cluster.nodes)) > 0);
  } finally {
    await cluster.stop();
  }
});
