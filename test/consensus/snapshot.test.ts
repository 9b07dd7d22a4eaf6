import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { type Entry, Raft } from "../../src/consensus/index.ts";
import { Cluster, data } from "./harness.ts";

function committedCluster(): Cluster {
  const c = new Cluster(["a", "b", "c"], { timeouts: { a: 0, b: 0.5, c: 0.9 } });
  c.elect("a");
  c.propose("a", 10, true);
  c.deliver();
  c.tick(undefined, 1);
  return c;
}

describe("snapshots", () => {
  it("a primary asks its node to send a snapshot to a backup that needs compacted entries", () => {
    const c = committedCluster();
    const a = c.raft("a");
    a.compact(10);
    assert.equal(a.logStart.seqno, 10);
    assert.equal(a.entry(10), undefined);
    c.add("d", []);
    c.propose("a", 1, true, ["a", "b", "c", "d"]);
    c.tick(undefined, 3);
    assert.deepEqual(c.node("a").snapshotsToSend, [{ to: "d", seqno: 10 }]);
    assert.equal(a.status().peers.d?.state, "snapshot");
    // The node ships its snapshot; d installs it and continues from seqno 11.
    const d = c.raft("d");
    assert.equal(d.restoreSnapshot({ seqno: 10, view: a.viewAt(10)!, config: a.configAt(10) }), "reset");
    assert.equal(d.commitSeqno, 10);
    assert.equal(d.logStart.seqno, 10);
    c.process("d");
    c.tick(undefined, 3);
    assert.equal(d.lastSeqno, 11);
    assert.equal(a.commitSeqno, 11);
    assert.equal(d.commitSeqno, 11);
    assert.equal(a.status().peers.d?.state, "replicate");
    assert.equal(c.node("a").snapshotsToSend.length, 1, "one snapshot was enough");
  });

  it("asks again if the snapshot never arrives", () => {
    const c = committedCluster();
    c.raft("a").compact(10);
    c.add("d", []);
    c.propose("a", 1, true, ["a", "b", "c", "d"]);
    c.tick(undefined, 3);
    assert.equal(c.node("a").snapshotsToSend.length, 1);
    c.tick(undefined, 45);
    assert.equal(c.node("a").snapshotsToSend.length, 2);
  });

  it("a backup keeps the entries after a snapshot point its log agrees with", () => {
    const entries: Entry[] = [];
    for (let s = 1; s <= 15; s++)
      entries.push({ seqno: s, view: 1, isSignature: s % 5 === 0, data: data(`${s}`) });
    const raft = new Raft({
      id: "b",
      random: () => 0.5,
      log: { start: { seqno: 0, view: 0, config: ["a", "b", "c"] }, entries },
      hardState: { view: 2, votedFor: "a" },
    });
    assert.equal(raft.restoreSnapshot({ seqno: 10, view: 1, config: ["a", "b", "c"] }), "kept_suffix");
    assert.equal(raft.lastSeqno, 15);
    assert.equal(raft.commitSeqno, 10);
    assert.equal(raft.entry(12)?.seqno, 12);
    assert.equal(raft.restoreSnapshot({ seqno: 5, view: 1, config: ["a", "b", "c"] }), "ignored");
    assert.equal(raft.restoreSnapshot({ seqno: 14, view: 3, config: ["a", "b", "c"] }), "ignored");
    assert.equal(raft.restoreSnapshot({ seqno: 14, view: 2, config: ["a", "b", "c"] }), "reset");
    assert.equal(raft.lastSeqno, 14);
    assert.equal(raft.entry(12), undefined);
  });

  it("refuses to compact beyond the commit point", () => {
    const c = committedCluster();
    c.propose("a", 2, false);
    assert.throws(() => c.raft("a").compact(12), /beyond commit 10/);
  });

  it("restarts from a snapshot point and a persisted log", () => {
    const entries: Entry[] = [];
    for (let s = 6; s <= 9; s++)
      entries.push({ seqno: s, view: 2, isSignature: s === 9, data: data(`${s}`) });
    const raft = new Raft({
      id: "a",
      random: () => 0,
      log: { start: { seqno: 5, view: 1, config: ["a"] }, entries },
      hardState: { view: 2, votedFor: "a" },
    });
    assert.equal(raft.commitSeqno, 5);
    assert.equal(raft.lastSeqno, 9);
    assert.equal(raft.viewAt(5), 1);
    for (let i = 0; i < 60 && raft.role !== "primary"; i++) raft.tick();
    assert.equal(raft.role, "primary");
    assert.equal(raft.view, 3);
  });
});
