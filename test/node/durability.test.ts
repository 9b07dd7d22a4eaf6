import assert from "node:assert/strict";
import { appendFileSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { verifyJsonReceipt } from "../../src/crypto/index.ts";
import type { StoreSnapshot } from "../../src/kv/index.ts";
import { auditLedger } from "../../src/node/index.ts";
import { budget } from "../e2e/waits.ts";
import { filesContaining } from "../helpers/files.ts";
import { startTestNetwork } from "../helpers/network.ts";

const commit = { "x-coco-wait": "commit" };

/** A store snapshot without the framework's internal maps (signatures change on every start). */
function appState(snapshot: StoreSnapshot): StoreSnapshot["maps"] {
  return snapshot.maps.filter((m) => !m.name.startsWith("public:ccf.internal."));
}

test("private values never appear in clear on disk; public values do", async () => {
  const net = await startTestNetwork({ snapshots: { txInterval: 5 } });
  try {
    const privateMarker = "PRIVATE-MARKER-7f3a9c";
    const publicMarker = "PUBLIC-MARKER-51b2e8";
    for (let i = 0; i < 12; i++) {
      await net.call("PUT", `/app/log/private?id=${i}`, {
        body: { msg: `${privateMarker}-${i}` },
        headers: commit,
      });
    }
    await net.call("PUT", "/app/log/public?id=1", { body: { msg: publicMarker }, headers: commit });
    await net.running.node.flush();
    // Wait for the snapshot written at a signature to land, so snapshots are scanned too.
    // An idle machine's second, stretched by the load (it is then asserted present).
    const snapshots = join(net.nodeDir, "snapshots");
    for (const end = Date.now() + budget(1_000); readdirSync(snapshots).length === 0 && Date.now() < end; )
      await new Promise((r) => setTimeout(r, 20));
    assert.ok(
      readdirSync(join(net.nodeDir, "snapshots")).some((f) => f.endsWith(".committed")),
      "a snapshot exists",
    );
    assert.deepEqual(filesContaining(net.dir, privateMarker), []);
    assert.ok(filesContaining(join(net.nodeDir, "ledger"), publicMarker).length > 0);
  } finally {
    await net.cleanup();
  }
});

test("a restart recovers every committed record, and old receipts still verify", async () => {
  const net = await startTestNetwork();
  try {
    const txids: string[] = [];
    for (let i = 0; i < 20; i++) {
      const res = await net.call("PUT", `/app/log/private?id=${i}`, {
        body: { msg: `v${i}` },
        headers: commit,
      });
      txids.push(res.txid!);
    }
    const receiptBefore = (await net.call("GET", `/app/receipt?transaction_id=${txids[3]}`)).json();
    const versionBefore = net.running.node.state.store.version;
    await net.restart();
    // Exactly the state before, plus the signature the node makes on taking up its new view.
    assert.equal(net.running.node.state.store.version, versionBefore + 1);
    assert.equal(net.running.node.state.lastSignatureSeqno, versionBefore + 1);
    for (let i = 0; i < 20; i++) {
      assert.deepEqual((await net.call("GET", `/app/log/private?id=${i}`)).json(), { msg: `v${i}` });
    }
    assert.equal((await net.call("GET", `/app/tx?transaction_id=${txids[3]}`)).json().status, "Committed");
    const receiptAfter = (await net.call("GET", `/app/receipt?transaction_id=${txids[3]}`)).json();
    assert.equal(verifyJsonReceipt(receiptAfter, net.serviceCertPem).ok, true);
    assert.equal(verifyJsonReceipt(receiptBefore, net.serviceCertPem).ok, true);
    // A restart starts a new view, so new transaction ids cannot collide with old ones.
    const next = await net.call("PUT", "/app/log/private?id=100", {
      body: { msg: "after" },
      headers: commit,
    });
    assert.ok(Number(next.txid!.split(".")[0]) > Number(txids[0]!.split(".")[0]));
  } finally {
    await net.cleanup();
  }
});

test("a torn write at the end of the ledger is truncated, never half-applied", async () => {
  const net = await startTestNetwork();
  try {
    for (let i = 0; i < 5; i++) {
      await net.call("PUT", `/app/log/public?id=${i}`, { body: { msg: `v${i}` }, headers: commit });
    }
    const version = net.running.node.state.store.version;
    await net.stop();
    const ledgerDir = join(net.nodeDir, "ledger");
    const open = readdirSync(ledgerDir).find((f) => /^ledger_\d+$/.test(f))!;
    appendFileSync(join(ledgerDir, open), Buffer.from([0x40, 0, 0, 0, 1, 2, 3]));
    await net.restart();
    assert.equal(net.running.node.state.store.version, version + 1, "the durable state and a new signature");
    assert.deepEqual((await net.call("GET", "/app/log/public?id=4")).json(), { msg: "v4" });
    const res = await net.call("PUT", "/app/log/public?id=9", { body: { msg: "later" }, headers: commit });
    assert.equal(res.status, 200);
  } finally {
    await net.cleanup();
  }
});

test("restart from a snapshot plus the ledger after it", async () => {
  const net = await startTestNetwork({ snapshots: { txInterval: 10 }, signatures: { maxTransactions: 4 } });
  try {
    for (let i = 0; i < 30; i++) {
      await net.call("PUT", `/app/log/private?id=${i}`, { body: { msg: `s${i}` }, headers: commit });
    }
    await net.call("PUT", "/app/log/private?id=5", { body: { msg: "rewritten" }, headers: commit });
    await net.call("DELETE", "/app/log/private?id=6", { headers: commit });
    const snapshotsDir = join(net.nodeDir, "snapshots");
    for (const end = Date.now() + budget(1_000); readdirSync(snapshotsDir).length === 0 && Date.now() < end; )
      await new Promise((r) => setTimeout(r, 20));
    const expected = appState(net.running.node.state.store.snapshot());
    await net.restart();
    assert.ok(net.running.node.startupSnapshotSeqno > 0, "restarted from a snapshot");
    assert.deepEqual(appState(net.running.node.state.store.snapshot()), expected);
    assert.deepEqual((await net.call("GET", "/app/log/private?id=5")).json(), { msg: "rewritten" });
    assert.equal((await net.call("GET", "/app/log/private?id=6")).status, 404);
  } finally {
    await net.cleanup();
  }
});

test("ledger secret rotation: new entries use the new secret; history stays readable after restart", async () => {
  const net = await startTestNetwork();
  try {
    await net.call("PUT", "/app/log/private?id=1", { body: { msg: "before rekey" }, headers: commit });
    const rekeySeqno = net.running.node.rekey();
    const after = await net.call("PUT", "/app/log/private?id=2", {
      body: { msg: "after rekey" },
      headers: commit,
    });
    assert.ok(Number(after.txid!.split(".")[1]) > rekeySeqno);
    assert.equal(net.running.node.state.secrets.list().length, 2);
    const receipt = (await net.call("GET", `/app/receipt?transaction_id=${after.txid}`)).json();
    assert.equal(verifyJsonReceipt(receipt, net.serviceCertPem).ok, true);
    await net.restart();
    assert.deepEqual((await net.call("GET", "/app/log/private?id=1")).json(), { msg: "before rekey" });
    assert.deepEqual((await net.call("GET", "/app/log/private?id=2")).json(), { msg: "after rekey" });
    const audit = await auditLedger(join(net.nodeDir, "ledger"), net.serviceCertPem);
    assert.equal(audit.ok, true, JSON.stringify(audit.failure));
  } finally {
    await net.cleanup();
  }
});

test("audit verifies every signature; flipping a byte of a committed chunk is detected", async () => {
  const net = await startTestNetwork({ ledger: { chunkSize: 4096 } });
  try {
    for (let i = 0; i < 60; i++) {
      await net.call("PUT", `/app/log/public?id=${i}`, { body: { msg: "x".repeat(100) }, headers: commit });
    }
    await net.stop();
    const ledgerDir = join(net.nodeDir, "ledger");
    const good = await auditLedger(ledgerDir, net.serviceCertPem);
    assert.equal(good.ok, true, JSON.stringify(good.failure));
    assert.ok(good.signatures > 1);
    const committed = readdirSync(ledgerDir).filter((f) => f.endsWith(".committed"));
    assert.ok(committed.length > 0, "several chunks were committed");
    const file = join(ledgerDir, committed[0]!);
    const bytes = readFileSync(file);
    for (const offset of [20, Math.floor(bytes.length / 2), bytes.length - 3]) {
      const flipped = Buffer.from(bytes);
      flipped[offset]! ^= 0x01;
      writeFileSync(file, flipped);
      const report = await auditLedger(ledgerDir, net.serviceCertPem);
      assert.equal(report.ok, false, `flip at ${offset} must be detected`);
      assert.ok(report.failure!.message.length > 0);
    }
    writeFileSync(file, bytes);
    assert.equal((await auditLedger(ledgerDir, net.serviceCertPem)).ok, true);
  } finally {
    await net.cleanup().catch(() => {});
  }
});
