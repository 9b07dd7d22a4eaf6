import assert from "node:assert/strict";
import { readdirSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { readLedgerDir } from "../../src/ledger/index.ts";
import type { RunningNode } from "../../src/node/run.ts";
import { budget } from "../e2e/waits.ts";
import { Cluster } from "../helpers/cluster.ts";

const SNAPSHOTS = { snapshots: { txInterval: 10 } };

async function write(cluster: Cluster, from: number, to: number): Promise<void> {
  for (let i = from; i < to; i++) {
    const node = cluster.primary()!;
    const res = await cluster.call(node, "PUT", `/app/log/private?id=${i}`, {
      body: { msg: `v${i}` },
      headers: { "x-coco-wait": "commit" },
    });
    assert.equal(res.status, 200, res.text);
  }
}

/** Starts a node that joins through the primary, and has the members trust it once it is pending. */
async function joinAndTrust(cluster: Cluster, name: string) {
  const primary = cluster.primary()!;
  const joining = cluster.join(name, primary, SNAPSHOTS);
  await cluster.trustNode(await cluster.pendingNode(primary));
  return joining;
}

/** The settings that restart a stopped node where the service expects to find it. */
function restartSettings(running: RunningNode) {
  const { nodeAddress, rpc } = running.node.config;
  return {
    join: { target: "127.0.0.1:1", serviceCertFile: "service_cert.pem" },
    nodeAddress: `${nodeAddress.host}:${nodeAddress.port}`,
    rpc: { address: `${rpc.host}:${rpc.port}` },
    ...SNAPSHOTS,
  };
}

function ledgerStart(cluster: Cluster, name: string): number {
  const chunks = readdirSync(join(cluster.dir, name, "ledger")).filter((f) => f.startsWith("ledger_"));
  return Math.min(...chunks.map((f) => Number(/^ledger_(\d+)/.exec(f)![1])));
}

test("a new node and a node far behind catch up from the primary's snapshot, then from its ledger", {
  timeout: budget(120_000),
}, async () => {
  const cluster = await Cluster.create();
  try {
    const n0 = await cluster.startService({ openAtNodes: 1, ...SNAPSHOTS });
    await cluster.until(
      "the service is open",
      async () => (await cluster.call(n0, "GET", "/node/ready/app")).status === 204,
    );
    await write(cluster, 0, 40);
    await cluster.until(
      "the primary compacted its consensus log",
      () => (n0.node.consensusStatus?.logStart ?? 0) > 0,
    );
    assert.ok(readdirSync(join(cluster.dir, "n0", "snapshots")).some((f) => f.endsWith(".committed")));

    // A joiner gets the snapshot: consensus no longer holds the entries it would need.
    const n1 = await joinAndTrust(cluster, "n1");
    await cluster.until("n1 has caught up", () => n1.node.state.commitSeqno >= n0.node.state.commitSeqno);
    const start = n1.node.state.historyStart;
    assert.ok(start > 1, `n1 started from a snapshot (history starts at ${start})`);
    assert.equal(ledgerStart(cluster, "n1"), start + 1, "n1's ledger begins right after the snapshot");
    assert.deepEqual((await cluster.call(n1, "GET", "/app/log/private?id=3")).json(), { msg: "v3" });

    // Receipts: none for what came before the snapshot, on this node; new transactions have them.
    const early = await cluster.call(n1, "GET", `/app/receipt?transaction_id=${n0.node.state.txIdOf(3)}`);
    assert.equal(early.status, 404);
    assert.match(early.text, /started from a snapshot/);
    await write(cluster, 40, 45);
    const fresh = await cluster.call(n0, "PUT", "/app/log/private?id=45", {
      body: { msg: "v45" },
      headers: { "x-coco-wait": "commit" },
    });
    const txid = String(fresh.headers["x-ms-ccf-transaction-id"]);
    await cluster.until(
      "n1 has the new write committed",
      () => n1.node.state.commitSeqno >= Number(txid.split(".")[1]),
    );
    const receipt = await cluster.call(n1, "GET", `/app/receipt?transaction_id=${txid}`);
    assert.equal(receipt.status, 200, receipt.text);
    assert.equal(receipt.json().node_id !== undefined, true);

    // A third node, then one stopped while the service moves on by several snapshots.
    const n2 = await joinAndTrust(cluster, "n2");
    await cluster.until("n2 has caught up", () => n2.node.state.commitSeqno >= n0.node.state.commitSeqno);
    const n2Behind = n2.node.state.lastSeqno;
    await n2.stop();
    cluster.nodes.splice(cluster.nodes.indexOf(n2), 1);
    // Past everything n2 holds or has been sent (entries still in flight to it when it stopped are
    // delivered when it comes back): the service writes on until the primary's log starts after
    // them. Snapshots come further apart as the store grows (docs/operations.md), so how many
    // writes that takes is not fixed.
    const compactedPastN2 = () => {
      const status = cluster.primary()?.node.consensusStatus;
      const sent = (status?.peers[n2.node.nodeId]?.next ?? 0) - 1;
      return (status?.logStart ?? 0) > Math.max(n2Behind, sent);
    };
    await write(cluster, 100, 140);
    for (let i = 140; i < 400 && !compactedPastN2(); i += 10) await write(cluster, i, i + 10);
    await cluster.until("the primary compacted past n2", compactedPastN2);

    const back = await cluster.start("n2", restartSettings(n2));
    await cluster.until(
      "n2 has caught up again",
      () => back.node.state.commitSeqno >= cluster.primary()!.node.state.commitSeqno,
    );
    assert.ok(back.node.state.historyStart > n2Behind, "n2 took a snapshot in place of its old ledger");
    assert.deepEqual((await cluster.call(back, "GET", "/app/log/private?id=139")).json(), { msg: "v139" });
    assert.deepEqual((await cluster.call(back, "GET", "/app/log/private?id=0")).json(), { msg: "v0" });

    // Every node's ledger agrees, entry for entry, where they overlap up to the commit point.
    const commit = Math.min(...cluster.nodes.map((n) => n.node.state.commitSeqno));
    await Promise.all(cluster.nodes.map((n) => n.node.flush()));
    const ledgers = await Promise.all(
      ["n0", "n1", "n2"].map(async (name) => {
        const frames = new Map<number, string>();
        for await (const r of readLedgerDir(join(cluster.dir, name, "ledger")))
          frames.set(r.entry.seqno, Buffer.from(r.entry.frame).toString("hex"));
        return frames;
      }),
    );
    for (let seqno = ledgerStart(cluster, "n2"); seqno <= commit; seqno++) {
      assert.equal(ledgers[2]!.get(seqno), ledgers[0]!.get(seqno), `n2 entry ${seqno}`);
      assert.equal(ledgers[1]!.get(seqno), ledgers[0]!.get(seqno), `n1 entry ${seqno}`);
    }

    // A node that started from a snapshot restarts from it and its ledger.
    await n1.stop();
    cluster.nodes.splice(cluster.nodes.indexOf(n1), 1);
    const n1Again = await cluster.start("n1", restartSettings(n1));
    assert.equal(n1Again.node.startupSnapshotSeqno > 0, true);
    await write(cluster, 200, 205);
    await cluster.until(
      "n1 restarted and caught up",
      () => n1Again.node.state.commitSeqno >= cluster.primary()!.node.state.commitSeqno,
    );
    assert.deepEqual((await cluster.call(n1Again, "GET", "/app/log/private?id=204")).json(), { msg: "v204" });
  } finally {
    await cluster.stop();
  }
});
