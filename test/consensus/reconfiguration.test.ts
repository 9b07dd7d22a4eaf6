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

// Configuration changes and the retirement hand-over are scenarios: test/consensus/scenarios/*.txt.
describe("retirement", () => {
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
    // What tells the node to write its hint at once: a configuration change the commit passed.
    assert.equal(remembering.configChangedIn(0, 1), true);
    assert.equal(remembering.configChangedIn(1, 3), true);
    assert.equal(remembering.configChangedIn(2, 3), false);
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
