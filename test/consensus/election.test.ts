import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { Raft } from "../../src/consensus/index.ts";
import { Cluster } from "./harness.ts";

describe("elections", () => {
  it("elects exactly one primary, and the others follow it", () => {
    const cluster = new Cluster(["a", "b", "c"], { timeouts: { a: 0, b: 0.5, c: 0.9 } });
    cluster.elect("a");
    assert.deepEqual(cluster.primaries(), ["a"]);
    assert.equal(cluster.raft("a").view, 1);
    cluster.tick(undefined, 3);
    for (const id of ["b", "c"]) {
      assert.equal(cluster.raft(id).role, "backup");
      assert.equal(cluster.raft(id).leader, "a");
      assert.equal(cluster.raft(id).view, 1);
    }
  });

  it("a single-node configuration elects itself", () => {
    const cluster = new Cluster(["solo"]);
    cluster.elect("solo");
    assert.equal(cluster.raft("solo").view, 1);
  });

  it("a node whose vote is already cast refuses another candidate in the same view", () => {
    const cluster = new Cluster(["a", "b", "c"], { timeouts: { a: 0, b: 0.5, c: 0.9 } });
    const b = cluster.raft("b");
    b.step({ type: "request_vote", from: "a", to: "b", view: 5, lastSeqno: 0, lastView: 0, handover: false });
    const first = b.ready();
    b.advance(first);
    assert.deepEqual(first.hardState, { view: 5, votedFor: "a" });
    const vote = first.messages[0]?.message;
    assert.ok(vote?.type === "request_vote_response");
    assert.equal(vote.granted, true);
    b.step({ type: "request_vote", from: "c", to: "b", view: 5, lastSeqno: 9, lastView: 4, handover: false });
    const second = b.ready();
    b.advance(second);
    const refusal = second.messages[0]?.message;
    assert.ok(refusal?.type === "request_vote_response");
    assert.equal(refusal.granted, false);
    assert.equal(second.hardState, undefined);
  });

  it("refuses a candidate whose log is behind", () => {
    const cluster = new Cluster(["a", "b", "c"], { timeouts: { a: 0, b: 0.5, c: 0.9 } });
    cluster.elect("a");
    cluster.propose("a", 3);
    cluster.deliver();
    const c = cluster.raft("c");
    // b (a member: non-members are not listened to at all) asks with a log behind c's.
    c.step({ type: "request_vote", from: "b", to: "c", view: 9, lastSeqno: 2, lastView: 1, handover: true });
    const ready = c.ready();
    c.advance(ready);
    const reply = ready.messages.find((m) => m.to === "b")?.message as { granted: boolean; view: number };
    assert.equal(reply.granted, false);
    assert.equal(reply.view, 9);
  });

  it("splits votes then recovers with the next timeout", () => {
    const cluster = new Cluster(["a", "b", "c", "d"], { timeouts: { a: 0, b: 0, c: 0.9, d: 0.9 } });
    for (let i = 0; i < 200 && cluster.primaries().length === 0; i++) cluster.tick();
    assert.equal(cluster.primaries().length, 1);
  });
});

describe("pre-vote", () => {
  it("a partitioned node does not raise its view, and does not disrupt the primary when it returns", () => {
    const cluster = new Cluster(["a", "b", "c"], { timeouts: { a: 0, b: 0.9, c: 0.5 } });
    cluster.elect("a");
    cluster.propose("a", 2);
    cluster.deliver();
    const view = cluster.raft("a").view;
    cluster.isolate("c");
    cluster.tick(undefined, 100);
    assert.equal(cluster.raft("c").view, view, "pre-vote kept the isolated node's view");
    assert.notEqual(cluster.raft("c").role, "primary");
    cluster.heal();
    cluster.tick(undefined, 30);
    assert.deepEqual(cluster.primaries(), ["a"]);
    assert.equal(cluster.raft("a").view, view);
    assert.equal(cluster.raft("c").leader, "a");
  });

  it("without a quorum of pre-votes nobody's view moves", () => {
    const cluster = new Cluster(["a", "b", "c"], { timeouts: { a: 0, b: 0.9, c: 0.5 } });
    cluster.isolate("a");
    cluster.isolate("b");
    cluster.isolate("c");
    cluster.tick(undefined, 60);
    for (const id of ["a", "b", "c"]) {
      assert.equal(cluster.raft(id).view, 0);
      assert.equal(cluster.raft(id).role, "precandidate");
    }
  });

  it("a node that heard from the primary recently ignores a pre-vote", () => {
    const cluster = new Cluster(["a", "b", "c"], { timeouts: { a: 0, b: 0.9, c: 0.5 } });
    cluster.elect("a");
    const b = cluster.raft("b");
    const before = b.view;
    b.step({ type: "pre_vote", from: "c", to: "b", view: before + 1, lastSeqno: 100, lastView: before });
    assert.equal(b.hasReady(), false, "no answer at all within the lease");
  });
});

describe("check quorum", () => {
  it("a primary that cannot hear from a quorum steps down within an election timeout", () => {
    const cluster = new Cluster(["a", "b", "c"], { timeouts: { a: 0, b: 0.5, c: 0.9 } });
    cluster.elect("a");
    cluster.isolate("a");
    cluster.tick(["a"], 9);
    cluster.tick(["a"], 11);
    assert.equal(cluster.raft("a").role, "backup");
    assert.equal(cluster.raft("a").leader, null);
  });

  it("a primary that hears from one of two backups stays", () => {
    const cluster = new Cluster(["a", "b", "c"], { timeouts: { a: 0, b: 0.5, c: 0.9 } });
    cluster.elect("a");
    cluster.isolate("c");
    cluster.tick(["a", "b"], 50);
    assert.equal(cluster.raft("a").role, "primary");
  });

  it("a primary steps down on hearing of a higher view", () => {
    const cluster = new Cluster(["a", "b", "c"], { timeouts: { a: 0, b: 0.5, c: 0.9 } });
    cluster.elect("a");
    const a = cluster.raft("a");
    a.step({
      type: "append_entries_response",
      from: "b",
      to: "a",
      view: a.view + 3,
      success: false,
      matchSeqno: 0,
      durableSeqno: 0,
      lastSeqno: 0,
      commitSeqno: 0,
      rejectedPrev: 0,
      conflictView: 0,
      conflictFirst: 0,
    });
    assert.equal(a.role, "backup");
    assert.equal(a.view, 4);
  });
});

describe("timing", () => {
  it("draws election timeouts from the injected random source", () => {
    const early = new Raft({
      id: "a",
      random: () => 0,
      electionTicksMin: 10,
      electionTicksMax: 20,
      log: { start: { seqno: 0, view: 0, config: ["a", "b", "c"] }, entries: [] },
    });
    for (let i = 0; i < 9; i++) early.tick();
    assert.equal(early.role, "backup");
    early.tick();
    assert.equal(early.role, "precandidate");
  });

  it("a node outside every configuration never campaigns", () => {
    const joiner = new Raft({ id: "z", random: () => 0, electionTicksMin: 2, electionTicksMax: 3 });
    for (let i = 0; i < 50; i++) joiner.tick();
    assert.equal(joiner.role, "backup");
    assert.equal(joiner.view, 0);
    assert.equal(joiner.ready().messages.length, 0);
  });
});

it("campaignNow: a lone member becomes primary at once; a non-member cannot campaign", () => {
  const lone = new Raft({
    id: "a",
    random: () => 0.5,
    log: { start: { seqno: 0, view: 0, config: ["a"] }, entries: [] },
  });
  assert.equal(lone.campaignNow(), true);
  assert.equal(lone.role, "primary");
  assert.equal(lone.view, 1);
  assert.equal(lone.campaignNow(), false);
  const outsider = new Raft({
    id: "z",
    random: () => 0.5,
    log: { start: { seqno: 0, view: 0, config: ["a"] }, entries: [] },
  });
  assert.equal(outsider.campaignNow(), false);
  assert.equal(outsider.role, "backup");
});
