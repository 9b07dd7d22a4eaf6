import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { CocoClient, type CocoClientError } from "../../src/client/index.ts";
import { startTestNetwork, type TestNetwork } from "../helpers/network.ts";

let net: TestNetwork;
let client: CocoClient;
before(async () => {
  net = await startTestNetwork();
  client = new CocoClient({
    url: `https://127.0.0.1:${net.running.port}`,
    serviceCertPem: net.serviceCertPem,
    certPem: net.identities.user.certPem,
    keyPem: net.identities.user.privateKeyPem,
  });
});
after(async () => {
  await client.close();
  await net.cleanup();
});

test("client: write with respond-on-commit, status, verified JSON and COSE receipts", async () => {
  const put = await client.call("PUT", "/app/log/private?id=1", {
    body: { msg: "via client" },
    waitForCommit: true,
  });
  assert.equal(put.body, true);
  assert.ok(put.txid);
  assert.equal(await client.txStatus(put.txid!), "Committed");
  const receipt = await client.receipt(put.txid!);
  assert.match(receipt.leaf_components.commit_evidence, /^ce:/);
  assert.ok((await client.coseReceipt(put.txid!)).length > 100);
  const get = await client.call<{ msg: string }>("GET", "/app/log/private?id=1");
  assert.deepEqual(get.body, { msg: "via client" });
});

test("client: errors carry the status and code", async () => {
  await assert.rejects(client.call("GET", "/app/log/private?id=999"), (e: CocoClientError) => {
    assert.equal(e.status, 404);
    assert.equal(e.code, "ResourceNotFound");
    return true;
  });
});
