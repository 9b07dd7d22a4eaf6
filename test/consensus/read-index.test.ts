import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { Cluster } from "./harness.ts";

function cluster(): Cluster {
  const c = new Cluster(["a", "b", "c"], { timeouts: { a: 0, b: 0.5, c: 0.9 } });
  c.elect("a");
  c.propose("a", 3, true);
  c.deliver();
  return c;
}

describe("read index", () => {
  it("confirms leadership with a quorum and returns the commit point, with no write", () => {
    const c = cluster();
    const a = c.raft("a");
    const last = a.lastSeqno;
    const heartbeats = c.counts.get("heartbeat>b") ?? 0;
    a.readIndex("r1");
    a.readIndex("r2");
    c.deliver();
    assert.deepEqual(c.node("a").readStates, [
      { requestId: "r1", seqno: 3 },
      { requestId: "r2", seqno: 3 },
    ]);
    assert.equal(a.lastSeqno, last, "nothing was appended");
    assert.equal(c.counts.get("heartbeat>b"), heartbeats + 1, "one heartbeat round served both reads");
  });

  it("answers from before the read do not confirm it", () => {
    const c = cluster();
    const a = c.raft("a");
    a.tick();
    const round0 = a.ready();
    a.advance(round0);
    a.readIndex("r");
    const round1 = a.ready();
    a.advance(round1);
    // Deliver the answers to the heartbeats sent before the read.
    for (const { to, message } of round0.messages) {
      const backup = c.raft(to);
      backup.step(message);
      const answer = backup.ready();
      backup.advance(answer);
      for (const reply of answer.messages) a.step(reply.message);
    }
    const after = a.ready();
    a.advance(after);
    assert.deepEqual(after.readStates, []);
    for (const { to, message } of round1.messages) c.queue.push({ from: "a", to, message });
    c.deliver();
    assert.deepEqual(c.node("a").readStates, [{ requestId: "r", seqno: 3 }]);
  });

  it("a primary cut off from the quorum never confirms, and rejects the read when it steps down", () => {
    const c = cluster();
    c.isolate("a");
    c.raft("a").readIndex("r");
    c.tick(["a"], 25);
    assert.deepEqual(c.node("a").readStates, []);
    assert.deepEqual(c.node("a").readsRejected, ["r"]);
    assert.equal(c.raft("a").role, "backup");
  });

  it("a new primary waits for its first commit before serving reads", () => {
    const c = cluster();
    c.isolate("a");
    const b = c.raft("b");
    for (let i = 0; i < 300 && b.role !== "primary"; i++) c.tick(["b", "c"]);
    b.readIndex("r");
    c.tick(["b", "c"], 3);
    assert.deepEqual(c.node("b").readStates, [], "view 2 has committed nothing yet");
    c.propose("b", 1, true);
    c.deliver();
    c.tick(["b", "c"], 1);
    assert.deepEqual(c.node("b").readStates, [{ requestId: "r", seqno: 4 }]);
  });

  it("a backup rejects reads at once", () => {
    const c = cluster();
    c.raft("b").readIndex("r");
    c.process("b");
    assert.deepEqual(c.node("b").readsRejected, ["r"]);
  });

  it("a single node confirms its reads alone", () => {
    const c = new Cluster(["solo"]);
    c.elect("solo");
    c.propose("solo", 1, true);
    c.raft("solo").readIndex("r");
    c.process("solo");
    assert.deepEqual(c.node("solo").readStates, [{ requestId: "r", seqno: 1 }]);
  });
});
