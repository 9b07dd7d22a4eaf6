import assert from "node:assert/strict";
import { randomBytes, X509Certificate } from "node:crypto";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { request } from "undici";
import {
  createServiceIdentity,
  curveOf,
  verifyCoseReceipt,
  verifyJsonReceipt,
} from "../../src/crypto/index.ts";
import { parseConfig } from "../../src/node/index.ts";
import { budget } from "../e2e/waits.ts";
import { stopAndAuditLedgers } from "../helpers/audit.ts";
import { Cluster } from "../helpers/cluster.ts";

test("a service created on P-256: nodes join on its curve, sign, serve receipts that verify, and audit clean", {
  timeout: budget(120_000),
}, async () => {
  const cluster = await Cluster.create();
  try {
    const n0 = await cluster.startService({ openAtNodes: 2, curve: "secp256r1" });
    const n1 = await cluster.join("n1", n0);
    await cluster.untilOpen();
    const serviceCertPem = readFileSync(join(cluster.dir, "service_cert.pem"), "utf8");
    assert.equal(curveOf(serviceCertPem), "secp256r1");
    assert.match(new X509Certificate(serviceCertPem).toLegacyObject().asn1Curve ?? "", /prime256v1/);
    // The joiner made its key on the service's curve, and the service endorsed it.
    for (const { node } of [n0, n1]) {
      assert.equal(curveOf(node.identity.nodeCertPem), "secp256r1");
      assert.ok(
        new X509Certificate(node.identity.nodeCertPem).verify(new X509Certificate(serviceCertPem).publicKey),
      );
    }
    let txid = "";
    for (const [i, via] of [n0, n1, n0].entries()) {
      const res = await cluster.call(via, "PUT", `/app/log/private?id=${i}`, {
        body: { msg: `p256 ${i}` },
        headers: { "x-coco-wait": "commit" },
      });
      assert.equal(res.status, 200, res.text);
      txid = res.headers["x-ms-ccf-transaction-id"] as string;
    }
    await cluster.until(
      "n1 has the last write",
      () => n1.node.state.commitSeqno >= n0.node.state.commitSeqno,
    );
    assert.deepEqual((await cluster.call(n1, "GET", "/app/log/private?id=2")).json(), { msg: "p256 2" });
    // Receipts from either node verify with only the (P-256) service certificate.
    for (const via of [n0, n1]) {
      const json = await cluster.call(via, "GET", `/app/receipt?transaction_id=${txid}`);
      assert.equal(json.status, 200, json.text);
      const checked = verifyJsonReceipt(json.json(), serviceCertPem);
      assert.equal(checked.ok, true, JSON.stringify(checked));
      const cose = await request(cluster.url(via, `/app/receipt/cose?transaction_id=${txid}`), {
        dispatcher: cluster.agent("user"),
      });
      assert.equal(cose.statusCode, 200);
      const coseChecked = verifyCoseReceipt(new Uint8Array(await cose.body.arrayBuffer()), serviceCertPem);
      assert.equal(coseChecked.ok, true, JSON.stringify(coseChecked));
    }
    // A receipt does not verify against another service's (P-384) certificate.
    const p384 = await createServiceIdentity({ now: new Date(), serial: randomBytes(16) });
    const json = (await cluster.call(n0, "GET", `/app/receipt?transaction_id=${txid}`)).json();
    assert.equal(verifyJsonReceipt(json, p384.certPem).ok, false);
    assert.equal(await stopAndAuditLedgers(cluster.nodes), 2);
  } finally {
    await cluster.stop();
  }
});

test("the curve setting: P-384 by default, secp256r1 on request, anything else refused", () => {
  const base = {
    dir: "/tmp/coco-curve-config",
    nodeAddress: "127.0.0.1:9",
    join: { target: "127.0.0.1:1", serviceCertFile: "s.pem" },
  };
  assert.equal(parseConfig(base, "/tmp").curve, "secp384r1");
  assert.equal(parseConfig({ ...base, curve: "secp256r1" }, "/tmp").curve, "secp256r1");
  assert.throws(() => parseConfig({ ...base, curve: "secp521r1" }, "/tmp"), /curve: must be one of/);
  assert.throws(() => parseConfig({ ...base, curve: 256 }, "/tmp"), /curve: must be one of/);
});
