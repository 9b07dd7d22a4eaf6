import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { type AppendEntries, type Entry, Raft } from "../../src/consensus/index.ts";
import { Cluster, data } from "./harness.ts";

function threeNodes(): Cluster {
  const cluster = new Cluster(["a", "b", "c"], { timeouts: { a: 0, b: 0.5, c: 0.9 } });
  cluster.elect("a");
  return cluster;
}

describe("commit", () => {
  it("commits only at signature entries", () => {
    const cluster = threeNodes();
    cluster.propose("a", 5, false);
    cluster.deliver();
    assert.equal(cluster.raft("a").commitSeqno, 0, "no signature, no commit");
    assert.equal(cluster.raft("b").lastSeqno, 5, "but the entries are replicated");
    cluster.propose("a", 1, true);
    cluster.deliver();
    cluster.tick(undefined, 1);
    for (const id of ["a", "b", "c"]) {
      assert.equal(cluster.raft(id).commitSeqno, 6);
      assert.deepEqual(cluster.node(id).commits, [6]);
    }
  });

  it("backups commit only up to a signature they hold", () => {
    const cluster = threeNodes();
    cluster.propose("a", 3, true);
    cluster.propose("a", 2, false);
    cluster.deliver();
    cluster.tick(undefined, 2);
    for (const id of ["a", "b", "c"]) assert.equal(cluster.raft(id).commitSeqno, 3);
  });

  it("counts only durable copies, the primary's own included", () => {
    const cluster = threeNodes();
    for (const id of ["a", "b", "c"]) cluster.node(id).autoPersist = false;
    cluster.propose("a", 2, true);
    cluster.deliver();
    assert.equal(cluster.raft("a").commitSeqno, 0, "nothing durable yet");
    cluster.persist("b");
    cluster.deliver();
    assert.equal(cluster.raft("a").commitSeqno, 0, "one durable copy of three");
    cluster.persist("c");
    cluster.deliver();
    assert.equal(cluster.raft("a").commitSeqno, 2, "b and c form a quorum without a");
  });

  it("does not commit an earlier view's signature by counting copies", () => {
    // a (view 1) replicates a signature to b only, then loses its quorum and leadership.
    const cluster = threeNodes();
    cluster.isolate("c");
    cluster.cut("b", "a");
    cluster.propose("a", 2, true);
    cluster.deliver();
    assert.equal(cluster.raft("b").lastSeqno, 2);
    assert.equal(cluster.raft("a").commitSeqno, 0);
    // b becomes primary of view 2 with the view-1 signature in its log.
    cluster.heal();
    cluster.isolate("a");
    const b = cluster.raft("b");
    for (let i = 0; i < 300 && b.role !== "primary"; i++) cluster.tick(["b", "c"]);
    assert.equal(b.role, "primary");
    cluster.tick(["b", "c"], 3);
    assert.equal(cluster.raft("c").lastSeqno, 2, "c holds the old signature now");
    assert.equal(b.commitSeqno, 0, "a quorum holds seqno 2, but it is from an earlier view");
    cluster.propose("b", 1, true);
    cluster.deliver();
    assert.equal(b.commitSeqno, 3, "a signature of the current view commits everything before it");
  });

  it("refuses proposals from a backup and malformed proposals", () => {
    const cluster = threeNodes();
    const b = cluster.raft("b");
    assert.equal(b.propose([{ seqno: 1, view: 1, isSignature: true, data: data("x") }]), false);
    const a = cluster.raft("a");
    assert.throws(() => a.propose([{ seqno: 7, view: 1, isSignature: true, data: data("x") }]), /seqno 7/);
    assert.throws(() => a.propose([{ seqno: 1, view: 0, isSignature: true, data: data("x") }]), /view/);
  });
});

describe("rollback", () => {
  it("a backup rolls back its conflicting uncommitted suffix and says so in Ready", () => {
    const cluster = threeNodes();
    cluster.propose("a", 2, true);
    cluster.deliver();
    cluster.tick(undefined, 1);
    // a appends entries only it has, then is cut off; b takes over and writes other entries.
    cluster.isolate("a");
    cluster.propose("a", 3, false);
    cluster.deliver();
    for (let i = 0; i < 300 && cluster.raft("b").role !== "primary"; i++) cluster.tick(["b", "c"]);
    cluster.propose("b", 2, true);
    cluster.deliver();
    cluster.heal();
    cluster.tick(undefined, 25);
    const a = cluster.node("a");
    assert.equal(a.raft.role, "backup");
    assert.equal(a.raft.leader, "b");
    assert.deepEqual(a.truncations, [2], "told to drop everything after the commit point");
    assert.deepEqual(
      a.disk.map((e) => `${e.view}.${e.seqno}`),
      cluster.node("b").disk.map((e) => `${e.view}.${e.seqno}`),
    );
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

  it("tells a too-short backup's primary where its log ends", () => {
    const cluster = threeNodes();
    cluster.propose("a", 5, true);
    cluster.deliver();
    cluster.isolate("c");
    cluster.propose("a", 25, true);
    cluster.deliver();
    cluster.heal();
    const c = cluster.raft("c");
    // A probe far beyond c's log: c answers with its last seqno.
    c.step({
      type: "append_entries",
      from: "a",
      to: "c",
      view: c.view,
      prevSeqno: 29,
      prevView: 1,
      entries: [],
      commitSeqno: 30,
    });
    const ready = c.ready();
    c.advance(ready);
    const reply = ready.messages[0]?.message;
    assert.ok(reply?.type === "append_entries_response");
    assert.equal(reply.success, false);
    assert.equal(reply.lastSeqno, 5);
    assert.equal(reply.rejectedPrev, 29);
    assert.equal(reply.conflictView, 0);
    // Driving the cluster, c catches up with a handful of AppendEntries, not one per entry.
    const before = cluster.counts.get("append_entries>c") ?? 0;
    cluster.tick(undefined, 8);
    assert.equal(c.lastSeqno, 30);
    const appends = (cluster.counts.get("append_entries>c") ?? 0) - before;
    assert.ok(appends <= 4, `caught up with ${appends} AppendEntries`);
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

  it("recovers when a batch is lost", () => {
    const cluster = threeNodes();
    cluster.propose("a", 2, true);
    cluster.deliver();
    cluster.propose("a", 3, true);
    cluster.dropQueue();
    cluster.tick(undefined, 8);
    for (const id of ["b", "c"]) assert.equal(cluster.raft(id).lastSeqno, 5);
    assert.equal(cluster.raft("a").commitSeqno, 5);
  });
});
