import assert from "node:assert/strict";
import { createHash, X509Certificate } from "node:crypto";
import { after, before, describe, test } from "node:test";
import { verifyCoseReceipt, verifyJsonReceipt } from "../../src/crypto/index.ts";
import { startTestNetwork, type TestNetwork } from "../helpers/network.ts";

describe("HTTPS API of a single node", () => {
  let net: TestNetwork;
  before(async () => {
    net = await startTestNetwork();
  });
  after(async () => {
    await net.cleanup();
  });

  test("writes and reads private and public records, with transaction ids", async () => {
    const put = await net.call("PUT", "/app/log/private?id=1", { body: { msg: "secret hello" } });
    assert.equal(put.status, 200, put.text);
    assert.match(put.txid ?? "", /^\d+\.\d+$/);
    const get = await net.call("GET", "/app/log/private?id=1");
    assert.equal(get.status, 200);
    assert.deepEqual(get.json(), { msg: "secret hello" });
    assert.match(get.txid ?? "", /^\d+\.\d+$/);

    const post = await net.call("POST", "/app/log/public", { body: { id: 7, msg: "public hello" } });
    assert.equal(post.status, 200, post.text);
    assert.deepEqual((await net.call("GET", "/app/log/public?id=7")).json(), { msg: "public hello" });

    const del = await net.call("DELETE", "/app/log/public?id=7");
    assert.equal(del.status, 200);
    assert.equal((await net.call("GET", "/app/log/public?id=7")).status, 404);
  });

  test("respond-on-commit answers once committed; receipts verify offline", async () => {
    const put = await net.call("PUT", "/app/log/private?id=2", {
      body: { msg: "wait for me" },
      headers: { "x-coco-wait": "commit" },
    });
    assert.equal(put.status, 200, put.text);
    const txid = put.txid!;
    const status = await net.call("GET", `/app/tx?transaction_id=${txid}`, { as: "none" });
    assert.deepEqual(status.json(), { transaction_id: txid, status: "Committed" });

    const receipt = await net.call("GET", `/app/receipt?transaction_id=${txid}`);
    assert.equal(receipt.status, 200, receipt.text);
    const json = receipt.json();
    assert.ok(json.cert && json.node_id && json.signature && Array.isArray(json.proof));
    assert.match(
      json.leaf_components.commit_evidence,
      new RegExp(`^ce:${txid.replace(".", "\\.")}:[0-9a-f]{64}$`),
    );
    assert.deepEqual(verifyJsonReceipt(json, net.serviceCertPem).ok, true);

    const cose = await net.call("GET", `/app/receipt?transaction_id=${txid}`, {
      headers: { accept: "application/cose" },
    });
    assert.equal(cose.headers["content-type"], "application/cose");
    assert.equal(verifyCoseReceipt(cose.bytes, net.serviceCertPem).ok, true);
    const coseVariant = await net.call("GET", `/app/receipt/cose?transaction_id=${txid}`);
    assert.equal(verifyCoseReceipt(coseVariant.bytes, net.serviceCertPem).ok, true);

    // A receipt from another service does not verify against this one's certificate.
    const other = await startTestNetwork();
    try {
      assert.equal(verifyJsonReceipt(json, other.serviceCertPem).ok, false);
    } finally {
      await other.cleanup();
    }
  });

  test("claims digests set by the app are bound into the receipt", async () => {
    const msg = "claim: 100 units to Alice";
    const put = await net.call("PUT", "/app/log/public?id=3", {
      body: { msg, record_claim: true },
      headers: { "x-coco-wait": "commit" },
    });
    assert.equal(put.status, 200);
    const receipt = (await net.call("GET", `/app/receipt?transaction_id=${put.txid}`)).json();
    const digest = createHash("sha256").update(msg).digest("hex");
    assert.equal(receipt.leaf_components.claims_digest, digest);
    assert.equal(verifyJsonReceipt(receipt, net.serviceCertPem).ok, true);
    receipt.leaf_components.claims_digest = createHash("sha256").update("claim: 999 units").digest("hex");
    assert.equal(verifyJsonReceipt(receipt, net.serviceCertPem).ok, false);
  });

  test("a read with respond-on-commit is answered once the state it read is committed", async () => {
    await net.call("PUT", "/app/log/private?id=60", { body: { msg: "fresh" } });
    const read = await net.call("GET", "/app/log/private?id=60", { headers: { "x-coco-wait": "commit" } });
    assert.equal(read.status, 200);
    assert.deepEqual(read.json(), { msg: "fresh" });
    const status = await net.call("GET", `/app/tx?transaction_id=${read.txid}`, { as: "none" });
    assert.equal(status.json().status, "Committed");
  });

  test("a linearizable read (read index) needs no write", async () => {
    await net.call("PUT", "/app/log/private?id=61", {
      body: { msg: "v" },
      headers: { "x-coco-wait": "commit" },
    });
    net.running.node.signIfPending();
    const version = net.running.node.state.store.version;
    const read = await net.call("GET", "/app/log/private?id=61", {
      headers: { "x-coco-read": "linearizable" },
    });
    assert.equal(read.status, 200);
    assert.deepEqual(read.json(), { msg: "v" });
    assert.equal(net.running.node.state.store.version, version);
  });

  test("transaction status: Pending, Committed, Unknown, Invalid", async () => {
    const commit = (await net.call("GET", "/app/commit", { as: "none" })).json().transaction_id as string;
    const [view, seqno] = commit.split(".").map(Number) as [number, number];
    const statusOf = async (id: string) =>
      (await net.call("GET", `/app/tx?transaction_id=${id}`, { as: "none" })).json().status;
    assert.equal(await statusOf(commit), "Committed");
    assert.equal(await statusOf(`${view}.${seqno + 1000}`), "Unknown");
    assert.equal(await statusOf(`${view + 5}.${seqno}`), "Invalid");
    const put = await net.call("PUT", "/app/log/private?id=4", { body: { msg: "x" } });
    assert.ok(["Pending", "Committed"].includes(await statusOf(put.txid!)));
    const receiptUnknown = await net.call("GET", `/app/receipt?transaction_id=${view}.${seqno + 1000}`);
    assert.equal(receiptUnknown.status, 404);
    assert.equal(receiptUnknown.json().error.code, "TransactionNotFound");
  });

  test("ordered range listing with pagination", async () => {
    for (const id of [105, 101, 103, 102, 104]) {
      assert.equal(
        (await net.call("PUT", `/app/log/private?id=${id}`, { body: { msg: `m${id}` } })).status,
        200,
      );
    }
    const first = (await net.call("GET", "/app/log/private/range?from=101&to=106&limit=2")).json();
    assert.deepEqual(first.entries, [
      { id: 101, msg: "m101" },
      { id: 102, msg: "m102" },
    ]);
    const second = (
      await net.call(
        "GET",
        `/app/log/private/range?from=101&to=106&limit=2&after=${encodeURIComponent(first.next)}`,
      )
    ).json();
    assert.deepEqual(
      second.entries.map((e: { id: number }) => e.id),
      [103, 104],
    );
    const third = (
      await net.call(
        "GET",
        `/app/log/private/range?from=101&to=106&limit=2&after=${encodeURIComponent(second.next)}`,
      )
    ).json();
    assert.deepEqual(third, { entries: [{ id: 105, msg: "m105" }] });
  });

  test("authentication: unknown certificates get 401, wrong roles 403, and nothing runs", async () => {
    const before = (await net.call("GET", "/node/commit", { as: "none" })).json();
    // Settle background signatures, so any change to the version below would be ours.
    net.running.node.signIfPending();
    const versionBefore = net.running.node.state.store.version;
    const none = await net.call("PUT", "/app/log/private?id=50", { as: "none", body: { msg: "x" } });
    assert.equal(none.status, 401);
    assert.equal(none.json().error.code, "InvalidAuthenticationInfo");
    const stranger = await net.call("PUT", "/app/log/private?id=50", { as: "stranger", body: { msg: "x" } });
    assert.equal(stranger.status, 401);
    assert.match(stranger.txid ?? "", /^\d+\.\d+$/);
    const member = await net.call("PUT", "/app/log/private?id=50", { as: "member", body: { msg: "x" } });
    assert.equal(member.status, 403);
    assert.equal(member.json().error.code, "AuthorizationFailed");
    assert.equal((await net.call("GET", "/app/receipt?transaction_id=2.1", { as: "stranger" })).status, 401);
    assert.equal(net.running.node.state.store.version, versionBefore);
    assert.equal((await net.call("GET", "/app/log/private?id=50")).status, 404);
    assert.ok(before.transaction_id);
  });

  test("bad input gets clear 4xx errors, changes nothing, and the node keeps serving", async () => {
    // Settle background signatures, so any change to the version below would be ours.
    net.running.node.signIfPending();
    const versionBefore = net.running.node.state.store.version;
    const cases: Array<[string, string, Parameters<TestNetwork["call"]>[2], number, string]> = [
      ["PUT", "/app/log/private?id=9", { rawBody: "{not json" }, 400, "InvalidInput"],
      ["PUT", "/app/log/private?id=9", { body: { message: "wrong field" } }, 400, "InvalidInput"],
      ["PUT", "/app/log/private?id=-1", { body: { msg: "x" } }, 400, "InvalidQueryParameterValue"],
      ["PUT", "/app/log/private?id=abc", { body: { msg: "x" } }, 400, "InvalidQueryParameterValue"],
      ["PUT", "/app/log/private", { body: { msg: "x" } }, 400, "InvalidQueryParameterValue"],
      ["PUT", "/app/log/private?id=9", { rawBody: "x".repeat(2 * 1024 * 1024) }, 413, "RequestBodyTooLarge"],
      [
        "PUT",
        "/app/log/private?id=9",
        { body: { msg: "x" }, headers: { "x-coco-wait": "soon" } },
        400,
        "InvalidHeaderValue",
      ],
      ["GET", "/app/log/private?id=1", { headers: { "x-coco-read": "stale" } }, 400, "InvalidHeaderValue"],
      ["GET", "/app/tx?transaction_id=1.x", { as: "none" }, 400, "InvalidQueryParameterValue"],
      ["GET", "/app/tx", { as: "none" }, 400, "InvalidQueryParameterValue"],
      ["GET", "/app/receipt?transaction_id=01.2", {}, 400, "InvalidQueryParameterValue"],
      ["GET", "/app/log/private/range?after=%%%", {}, 400, "InvalidInput"],
      ["GET", "/app/nowhere", {}, 404, "ResourceNotFound"],
      ["PATCH", "/app/log/private?id=1", { body: {} }, 405, "MethodNotAllowed"],
      ["GET", "/nowhere", { as: "none" }, 404, "ResourceNotFound"],
    ];
    for (const [method, path, opts, status, code] of cases) {
      const res = await net.call(method, path, opts);
      assert.equal(res.status, status, `${method} ${path}: ${res.text.slice(0, 200)}`);
      assert.equal(res.json().error.code, code, `${method} ${path}`);
      assert.equal(typeof res.json().error.message, "string");
      if (path.startsWith("/app"))
        assert.match(res.txid ?? "", /^\d+\.\d+$/, `${method} ${path} names a transaction`);
    }
    assert.equal(net.running.node.state.store.version, versionBefore);
    assert.equal((await net.call("GET", "/app/log/private?id=1")).status, 200);
  });

  test("operator endpoints", async () => {
    const state = (await net.call("GET", "/node/state", { as: "none" })).json();
    assert.equal(state.state, "PartOfNetwork");
    assert.equal(state.node_id, net.running.node.nodeId);
    const expiry = (pem: string) => new Date(new X509Certificate(pem).validTo).toISOString();
    assert.equal(state.node_certificate_valid_to, expiry(net.running.node.identity.nodeCertPem));
    assert.equal(state.service_certificate_valid_to, expiry(net.serviceCertPem));
    const network = (await net.call("GET", "/node/network", { as: "none" })).json();
    assert.equal(network.service_status, "Open");
    assert.equal(network.service_certificate, net.serviceCertPem);
    assert.equal((await net.call("GET", "/node/ready/app", { as: "none" })).status, 204);
    assert.equal((await net.call("GET", "/node/ready/gov", { as: "none" })).status, 204);
    assert.ok((await net.call("GET", "/node/version", { as: "none" })).json().coco_version);
    assert.match((await net.call("GET", "/node/commit", { as: "none" })).json().transaction_id, /^\d+\.\d+$/);
  });
});
