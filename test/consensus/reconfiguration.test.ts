import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { Raft } from "../../src/consensus/index.ts";
import { Cluster, data } from "./harness.ts";

function cluster(ids: string[]): Cluster {
  const timeouts: Record<string, number> = {};
  ids.forEach((id, i) => {
    timeouts[id] = i / ids.length;
  });
  const c = new Cluster(ids, { timeouts });
  c.elect(ids[0]!);
  c.propose(ids[0]!, 1, true);
  c.deliver();
  return c;
}

describe("reconfiguration", () => {
  it("takes effect when appended: the primary replicates to an added node at once", () => {
    const c = cluster(["a", "b", "c"]);
    c.add("d", []);
    c.propose("a", 1, false, ["a", "b", "c", "d"]);
    assert.deepEqual(c.raft("a").activeConfigs(), [
      ["a", "b", "c"],
      ["a", "b", "c", "d"],
    ]);
    c.deliver();
    assert.equal(c.raft("d").lastSeqno, 2, "the new node received the log");
  });

  it("while uncommitted, needs a quorum of the old configuration", () => {
    const c = cluster(["a", "b", "c"]);
    c.add("d", []);
    c.add("e", []);
    // Replace b and c by d and e, with b and c cut off: the new configuration has it, the old not.
    c.isolate("b");
    c.isolate("c");
    c.propose("a", 2, true, ["a", "d", "e"]);
    c.tick(["a", "d", "e"], 5);
    assert.equal(c.raft("d").lastSeqno, 3);
    assert.equal(c.raft("e").lastSeqno, 3);
    assert.equal(c.raft("a").commitSeqno, 1, "new quorum only: not committed");
    c.heal();
    c.tick(undefined, 5);
    assert.equal(c.raft("a").commitSeqno, 3);
    assert.deepEqual(c.raft("a").activeConfigs(), [["a", "d", "e"]]);
  });

  it("while uncommitted, needs a quorum of the new configuration", () => {
    const c = cluster(["a", "b", "c"]);
    c.add("d", []);
    c.add("e", []);
    c.isolate("d");
    c.isolate("e");
    c.propose("a", 2, true, ["a", "d", "e"]);
    c.tick(["a", "b", "c"], 5);
    assert.equal(c.raft("b").lastSeqno, 3);
    assert.equal(c.raft("a").commitSeqno, 1, "old quorum only: not committed");
    c.heal();
    c.tick(undefined, 5);
    assert.equal(c.raft("a").commitSeqno, 3);
  });

  it("a removed node stops taking part once the removal commits", () => {
    const c = cluster(["a", "b", "c", "d"]);
    c.propose("a", 2, true, ["a", "b", "c"]);
    c.deliver();
    c.tick(undefined, 3);
    assert.equal(c.raft("a").commitSeqno, 3);
    assert.equal(c.raft("d").commitSeqno, 3);
    assert.equal(c.raft("d").role, "retired");
    // A retired node ignores everything, including its own timer.
    c.tick(["d"], 100);
    assert.equal(c.raft("d").role, "retired");
    assert.equal(c.raft("d").hasReady(), false);
    // The rest carry on without it.
    c.propose("a", 1, true);
    c.deliver();
    assert.equal(c.raft("a").commitSeqno, 4);
  });

  it("an uncommitted configuration is rolled back with the entries", () => {
    const c = cluster(["a", "b", "c"]);
    c.isolate("a");
    c.propose("a", 1, false, ["a"]);
    assert.deepEqual(c.raft("a").activeConfigs(), [["a", "b", "c"], ["a"]]);
    for (let i = 0; i < 300 && c.raft("b").role !== "primary"; i++) c.tick(["b", "c"]);
    c.propose("b", 1, true);
    c.deliver();
    c.heal();
    c.tick(undefined, 25);
    assert.equal(c.raft("a").leader, "b");
    assert.deepEqual(c.raft("a").activeConfigs(), [["a", "b", "c"]]);
  });
});

describe("retirement hand-over", () => {
  it("a retiring primary stops proposing, then makes a caught-up member campaign at once", () => {
    const c = cluster(["a", "b", "c"]);
    c.propose("a", 2, true, ["b", "c"]);
    assert.equal(c.raft("a").canPropose, true, "still proposing until its removal commits");
    c.deliver();
    c.processAll();
    c.deliver();
    const a = c.raft("a");
    // Without any further tick: the removal committed, a handed over, b won at once.
    assert.equal(a.commitSeqno, 3);
    assert.equal(a.role, "retired");
    const primaries = c.primaries();
    assert.equal(primaries.length, 1);
    assert.equal(c.raft(primaries[0]!).view, 2);
    assert.equal(c.counts.get("timeout_now>b") ?? 0, 1);
  });

  it("waits for a successor to be caught up before handing over", () => {
    const c = cluster(["a", "b", "c"]);
    c.isolate("c");
    c.cut("a", "b");
    // a's removal cannot commit while b is cut off from a.
    c.propose("a", 2, true, ["b", "c"]);
    c.deliver();
    assert.equal(c.raft("a").role, "primary");
    assert.equal(c.counts.get("timeout_now>b") ?? 0, 0);
    c.heal();
    c.tick(undefined, 8);
    assert.equal(c.raft("a").role, "retired");
    assert.equal(c.primaries().length, 1);
    assert.notEqual(c.primaries()[0], "a");
    assert.ok((c.counts.get("timeout_now>b") ?? 0) + (c.counts.get("timeout_now>c") ?? 0) >= 1);
  });

  it("a retiring primary refuses proposals and reads once its removal is committed", () => {
    const c = cluster(["a", "b", "c"]);
    c.propose("a", 2, true, ["b", "c"]);
    const a = c.raft("a");
    c.deliver(100_000, () => a.commitSeqno === 3);
    assert.equal(a.role, "primary");
    assert.equal(a.canPropose, false);
    assert.equal(a.propose([{ seqno: 4, view: a.view, isSignature: true, data: new Uint8Array() }]), false);
    a.readIndex("r1");
    c.process("a");
    assert.deepEqual(c.node("a").readsRejected, ["r1"]);
  });
});

describe("after a restart", () => {
  it("a remembered commit point keeps committed configurations from counting again", () => {
    const genesis = {
      seqno: 1,
      view: 1,
      isSignature: true,
      config: ["a", "b", "c", "d", "e"],
      data: data("g"),
    };
    const shrink = { seqno: 2, view: 1, isSignature: false, config: ["a", "b", "c"], data: data("s") };
    const sign = { seqno: 3, view: 1, isSignature: true, data: data("x") };
    const log = { start: { seqno: 0, view: 0, config: [] }, entries: [genesis, shrink, sign] };
    const forgetful = new Raft({ id: "a", random: () => 0, log });
    assert.deepEqual(forgetful.activeConfigs(), [
      ["a", "b", "c", "d", "e"],
      ["a", "b", "c"],
    ]);
    const remembering = new Raft({ id: "a", random: () => 0, log, commitSeqno: 3 });
    assert.equal(remembering.commitSeqno, 3);
    assert.deepEqual(remembering.activeConfigs(), [["a", "b", "c"]]);
    // The hint is clamped to a signature the log holds.
    assert.equal(new Raft({ id: "a", random: () => 0, log, commitSeqno: 99 }).commitSeqno, 3);
    assert.equal(new Raft({ id: "a", random: () => 0, log, commitSeqno: 2 }).commitSeqno, 1);
  });

  it("a retired node still answers elections, so old configurations can still be satisfied", () => {
    const c = cluster(["a", "b", "c", "d"]);
    c.propose("a", 2, true, ["a", "b", "c"]);
    c.deliver();
    c.tick(undefined, 3);
    const d = c.raft("d");
    assert.equal(d.role, "retired");
    d.step({
      type: "request_vote",
      from: "b",
      to: "d",
      view: 9,
      lastSeqno: 50,
      lastView: 8,
      handover: false,
    });
    const ready = d.ready();
    d.advance(ready);
    const answer = ready.messages[0]?.message;
    assert.ok(answer?.type === "request_vote_response");
    assert.equal(answer.granted, true);
    assert.equal(d.role, "retired", "but it never campaigns or follows again");
    d.step({ type: "heartbeat", from: "b", to: "d", view: 9, commitSeqno: 3, round: 0 });
    assert.equal(d.hasReady(), false);
  });
});
