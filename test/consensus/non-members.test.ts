import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { Message } from "../../src/consensus/index.ts";
import { Cluster } from "./harness.ts";

/** A 3-node service with a as primary and one committed signature. */
function service(): Cluster {
  const c = new Cluster(["a", "b", "c"], { timeouts: { a: 0, b: 0.5, c: 0.9 } });
  c.elect("a");
  c.propose("a", 2);
  c.deliver();
  return c;
}

/** What an outsider "x" might send to `to`, claiming a much higher view. */
function forged(to: string, view: number): Message[] {
  const from = "x";
  return [
    { type: "heartbeat", from, to, view, commitSeqno: 0, round: 1 },
    {
      type: "append_entries",
      from,
      to,
      view,
      prevSeqno: 0,
      prevView: 0,
      entries: [],
      commitSeqno: 0,
    },
    { type: "request_vote", from, to, view, lastSeqno: 99, lastView: view - 1, handover: true },
    { type: "pre_vote", from, to, view, lastSeqno: 99, lastView: view - 1 },
    { type: "timeout_now", from, to, view },
  ] as Message[];
}

describe("messages from non-members", () => {
  it("a primary drops them, whatever view they claim, counts them, and keeps leading", () => {
    const c = service();
    const a = c.raft("a");
    const before = { view: a.view, commit: a.commitSeqno };
    for (const m of forged("a", before.view + 10)) a.step(m);
    assert.equal(a.role, "primary");
    assert.equal(a.view, before.view, "the view did not move");
    assert.equal(a.stats.nonMemberMessages, 5);
    assert.equal(a.status().nonMemberMessages, 5);
    assert.match(a.stats.lastProblem ?? "", /from x, which is not a member/);
    assert.equal(
      a.hasReady() ? a.ready().messages.filter((m) => m.to === "x").length : 0,
      0,
      "no answer to x",
    );
    // Writes keep committing.
    c.processAll();
    c.propose("a", 2);
    c.deliver();
    c.tick(["a"], 2); // heartbeats carry the commit point to the backups
    assert.ok(a.commitSeqno > before.commit);
    assert.equal(c.raft("b").commitSeqno, a.commitSeqno);
  });

  it("a backup following a live primary drops them and is not led away", () => {
    const c = service();
    const b = c.raft("b");
    const view = b.view;
    for (const m of forged("b", view + 10)) b.step(m);
    assert.equal(b.view, view);
    assert.equal(b.leader, "a");
    assert.equal(b.stats.nonMemberMessages, 5);
    c.processAll();
    c.propose("a", 1);
    c.deliver();
    c.tick(["a"], 2);
    assert.equal(b.commitSeqno, c.raft("a").commitSeqno, "b still follows a");
  });

  it("a vote request from a non-member is never granted, even without a primary", () => {
    const c = service();
    const b = c.raft("b");
    c.isolate("b");
    c.tick(["b"], 30); // b hears nothing for longer than an election timeout
    c.dropQueue();
    const dropped = b.stats.nonMemberMessages;
    b.step({
      type: "request_vote",
      from: "x",
      to: "b",
      view: 50,
      lastSeqno: 99,
      lastView: 49,
      handover: true,
    });
    assert.equal(b.stats.nonMemberMessages, dropped + 1);
    assert.notEqual(b.view, 50);
  });

  it("a node with no primary still learns from one it does not know yet (a joiner)", () => {
    const c = service();
    c.add("d", []);
    c.propose("a", 1, true, ["a", "b", "c", "d"]);
    c.deliver();
    const d = c.raft("d");
    assert.equal(d.leader, "a");
    assert.equal(d.lastSeqno, c.raft("a").lastSeqno, "the new node received the log from a");
    assert.equal(d.stats.nonMemberMessages, 0);
  });

  it("a removed node the primary still replicates to is heard until it is let go", () => {
    const c = service();
    c.propose("a", 1, true, ["a", "b"]);
    // c's answers still count while a tracks it: they are not dropped.
    c.deliver();
    c.tick(["a"], 3);
    assert.equal(c.raft("a").stats.nonMemberMessages, 0);
    assert.equal(c.raft("c").role, "retired", "c learned that its removal committed");
  });
});
