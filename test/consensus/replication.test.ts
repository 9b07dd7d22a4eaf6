import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { type AppendEntries, type Entry, Raft } from "../../src/consensus/index.ts";
import { Cluster, data } from "./harness.ts";

function threeNodes(): Cluster {
  const cluster = new Cluster(["a", "b", "c"], { timeouts: { a: 0, b: 0.5, c: 0.9 } });
  cluster.elect("a");
  return cluster;
}

// Commit rules, rollback and lost batches are scenarios: test/consensus/scenarios/*.txt.
describe("proposals", () => {
  it("refuses malformed proposals", () => {
    const cluster = threeNodes();
    const a = cluster.raft("a");
    assert.throws(() => a.propose([{ seqno: 7, view: 1, isSignature: true, data: data("x") }]), /seqno 7/);
    assert.throws(() => a.propose([{ seqno: 1, view: 0, isSignature: true, data: data("x") }]), /view/);
  });
});

describe("log repair", () => {
  function divergent(): { primary: Raft; backup: Raft } {
    // The backup holds 40 entries of view 2 that never committed; the primary (view 5) holds
    // entries of views 3 and 4 from seqno 11. Both share seqnos 1..10 of view 1.
    const shared: Entry[] = [];
    for (let s = 1; s <= 10; s++)
      shared.push({ seqno: s, view: 1, isSignature: s === 10, data: data(`s${s}`) });
    const backupLog = [...shared];
    for (let s = 11; s <= 50; s++)
      backupLog.push({ seqno: s, view: 2, isSignature: false, data: data(`x${s}`) });
    const primaryLog = [...shared];
    for (let s = 11; s <= 60; s++) {
      primaryLog.push({ seqno: s, view: s <= 30 ? 3 : 4, isSignature: s % 10 === 0, data: data(`p${s}`) });
    }
    const config = ["p", "q"];
    const primary = new Raft({
      id: "p",
      random: () => 0,
      electionTicksMin: 10,
      electionTicksMax: 20,
      log: { start: { seqno: 0, view: 0, config }, entries: primaryLog },
      hardState: { view: 4, votedFor: null },
    });
    const backup = new Raft({
      id: "q",
      random: () => 0.9,
      electionTicksMin: 10,
      electionTicksMax: 20,
      log: { start: { seqno: 0, view: 0, config }, entries: backupLog },
      hardState: { view: 4, votedFor: null },
    });
    return { primary, backup };
  }

  it("jumps back a whole view per round trip and converges", () => {
    const { primary, backup } = divergent();
    // Make p primary of view 5 (q grants: p's log is more up to date).
    for (let i = 0; i < 10; i++) primary.tick();
    let rounds = 0;
    let appendRounds = 0;
    for (; rounds < 50; rounds++) {
      const fromP = primary.ready();
      primary.advance(fromP);
      primary.persisted(primary.lastSeqno, primary.lastView);
      for (const { message } of fromP.messages) {
        if (message.type === "append_entries") appendRounds++;
        backup.step(message);
      }
      const fromQ = backup.ready();
      backup.advance(fromQ);
      if (fromQ.entriesToPersist.length > 0) {
        const last = fromQ.entriesToPersist.at(-1)!;
        backup.persisted(last.seqno, last.view);
      }
      for (const { message } of fromQ.messages) primary.step(message);
      const acks = backup.ready();
      backup.advance(acks);
      for (const { message } of acks.messages) primary.step(message);
      if (backup.lastSeqno === primary.lastSeqno && backup.viewAt(60) === 4 && primary.commitSeqno === 60)
        break;
      primary.tick();
    }
    assert.equal(primary.role, "primary");
    assert.equal(backup.lastSeqno, 60);
    for (let s = 1; s <= 60; s++) assert.equal(backup.viewAt(s), primary.viewAt(s), `seqno ${s}`);
    assert.ok(appendRounds <= 5, `repaired in ${appendRounds} AppendEntries, not one per entry`);
  });
});

describe("flow control", () => {
  it("batches entries and keeps at most maxInflight batches in flight to a backup", () => {
    const cluster = new Cluster(["a", "b"], {
      timeouts: { a: 0, b: 0.9 },
      config: { maxBatchEntries: 4, maxInflight: 2 },
    });
    cluster.elect("a");
    const a = cluster.raft("a");
    const entries: Entry[] = [];
    for (let i = 1; i <= 40; i++) {
      entries.push({ seqno: a.lastSeqno + i, view: a.view, isSignature: i === 40, data: data(`e${i}`) });
    }
    a.propose(entries);
    const ready = a.ready();
    a.advance(ready);
    const appends = ready.messages.filter((m) => m.message.type === "append_entries");
    assert.equal(appends.length, 2, "window of two batches");
    for (const { message } of appends) assert.equal((message as AppendEntries).entries.length, 4);
    // Acks open the window again and everything arrives.
    for (const { to, message } of ready.messages) cluster.queue.push({ from: "a", to, message });
    a.persisted(a.lastSeqno, a.view);
    cluster.deliver();
    assert.equal(cluster.raft("b").lastSeqno, 40);
    assert.equal(a.commitSeqno, 40);
  });

  it("limits a batch by bytes but always sends at least one entry", () => {
    const cluster = new Cluster(["a", "b"], {
      timeouts: { a: 0, b: 0.9 },
      config: { maxBatchBytes: 10, maxInflight: 100 },
    });
    cluster.elect("a");
    const a = cluster.raft("a");
    a.propose([
      { seqno: 1, view: a.view, isSignature: false, data: new Uint8Array(50) },
      { seqno: 2, view: a.view, isSignature: true, data: new Uint8Array(5) },
    ]);
    const ready = a.ready();
    a.advance(ready);
    const sizes = ready.messages
      .filter((m) => m.message.type === "append_entries")
      .map((m) => (m.message as AppendEntries).entries.length);
    assert.deepEqual(sizes, [1, 1]);
  });
});
