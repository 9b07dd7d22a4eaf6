import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { setImmediate as yieldToLoop } from "node:timers/promises";
import { verifyCoseReceipt, verifyJsonReceipt } from "../../src/crypto/index.ts";
import { budget } from "../e2e/waits.ts";
import { startTestNetwork, type TestNetwork } from "../helpers/network.ts";

// A node keeps the proofs of its last `ledger.receiptWindow` transactions in memory; receipts of
// older ones are rebuilt from its ledger files. Through the real endpoint, before and after a
// restart, across chunk files (small chunks), with the in-memory pages really dropped.

const WINDOW = 100;
const BULK = 4_500; // past one 4,096-transaction page

describe("receipts of transactions whose proofs left memory", () => {
  let net: TestNetwork;
  const txids: Record<string, string> = {};

  before(async () => {
    net = await startTestNetwork({ ledger: { chunkSize: 65_536, receiptWindow: WINDOW } });
    const write = async (id: number) => {
      const put = await net.call("PUT", `/app/log/private?id=${id}`, {
        body: { msg: `message ${id}` },
        headers: { "x-coco-wait": "commit" },
      });
      assert.equal(put.status, 200, put.text);
      return put.txid!;
    };
    txids.early = await write(1);
    txids.early2 = await write(2);
    // Thousands of transactions in-process (through HTTP they would take minutes on a loaded machine).
    const node = net.running.node;
    for (let i = 0; i < BULK; i++) {
      const tx = node.state.store.begin();
      tx.map("public:bulk").set(new TextEncoder().encode(`k${i % 50}`), new TextEncoder().encode(`v${i}`));
      const outcome = node.commit(tx);
      assert.ok(outcome.ok && outcome.seqno !== null);
      if (i === 2_000) txids.middle = `${outcome.view}.${outcome.seqno}`;
      if (i % 200 === 199) await yieldToLoop();
    }
    txids.late = await write(3);
    txids.recent = await write(4);
    // The covering signature of the last write commits too.
    node.wantCommit();
    await node.state.waitForCommit(node.state.lastSignatureSeqno);
  });
  after(async () => {
    await net.cleanup();
  });

  async function checkReceipt(name: string): Promise<void> {
    const txid = txids[name]!;
    const [view, seqno] = txid.split(".").map(Number) as [number, number];
    let found = await net.call("GET", `/app/receipt?transaction_id=${txid}`);
    // Rebuilding an old receipt reads the ledger files: a few polls on an idle machine.
    const deadline = Date.now() + budget(5_000);
    while (found.status === 202 && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 100));
      found = await net.call("GET", `/app/receipt?transaction_id=${txid}`);
    }
    assert.equal(found.status, 200, `${name} (${txid}): ${found.text}`);
    const json = verifyJsonReceipt(found.json(), net.serviceCertPem);
    assert.ok(json.ok && json.txid === txid, `${name} JSON receipt: ${JSON.stringify(json)}`);
    const cose = await net.call("GET", `/app/receipt/cose?transaction_id=${txid}`);
    assert.equal(cose.status, 200, cose.text);
    const coseResult = verifyCoseReceipt(cose.bytes, net.serviceCertPem);
    assert.ok(coseResult.ok && coseResult.txid === txid, `${name} COSE receipt`);
    assert.equal(coseResult.ok && json.ok && coseResult.root, json.ok && json.root);
    // Which way it was served: rebuilt from the files (Archived in memory) or from memory.
    const state = net.running.node.state;
    const archived = seqno <= state.heldProofs().archivedTo;
    assert.equal(state.receipt(view, seqno).status, archived ? "Archived" : "ok", `${name} in memory?`);
  }

  test("early, middle and recent receipts verify, JSON and COSE, with old pages dropped", async () => {
    const state = net.running.node.state;
    const held = state.heldProofs();
    assert.ok(held.archivedTo >= state.commitSeqno - WINDOW - 1, JSON.stringify(held));
    assert.ok(held.archivedTo > 4_096, "enough transactions left memory for a page to go");
    assert.equal(held.metaPages, 1, "the first page of transaction metadata was dropped");
    for (const name of ["early", "early2", "middle", "late", "recent"]) await checkReceipt(name);
    assert.equal(
      state.receipt(...(txids.early!.split(".").map(Number) as [number, number])).status,
      "Archived",
    );
  });

  test("after a restart, the same receipts are served from the ledger files", async () => {
    await net.restart();
    const state = net.running.node.state;
    assert.ok(state.heldProofs().archivedTo > 4_096, JSON.stringify(state.heldProofs()));
    for (const name of ["early", "early2", "middle", "late", "recent"]) await checkReceipt(name);
  });
});
