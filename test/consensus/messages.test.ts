import assert from "node:assert/strict";
import { describe, it } from "node:test";
import fc from "fast-check";
import { parseMessage, Raft } from "../../src/consensus/index.ts";
import { Cluster, data } from "./harness.ts";

function primaryAndBackup(): Cluster {
  const c = new Cluster(["a", "b", "c"], { timeouts: { a: 0, b: 0.5, c: 0.9 } });
  c.elect("a");
  c.propose("a", 4, true);
  c.deliver();
  return c;
}

const validAppend = {
  type: "append_entries",
  from: "a",
  to: "b",
  view: 1,
  prevSeqno: 4,
  prevView: 1,
  entries: [{ seqno: 5, view: 1, isSignature: true, data: data("x") }],
  commitSeqno: 4,
};

describe("message validation", () => {
  it("accepts a well-formed message", () => {
    assert.equal(parseMessage(validAppend).ok, true);
  });

  for (const [name, bad, reason] of [
    ["not an object", 42, /not an object/],
    ["unknown type", { ...validAppend, type: "gossip" }, /unknown message type "gossip"/],
    ["negative view", { ...validAppend, view: -1 }, /view must be an integer/],
    ["fractional seqno", { ...validAppend, prevSeqno: 1.5 }, /prevSeqno/],
    ["missing sender", { ...validAppend, from: "" }, /bad sender/],
    [
      "entries not contiguous",
      { ...validAppend, entries: [{ ...validAppend.entries[0], seqno: 7 }] },
      /expected 5/,
    ],
    [
      "entry from a later view",
      { ...validAppend, entries: [{ ...validAppend.entries[0], view: 2 }] },
      /beyond/,
    ],
    [
      "entry data not bytes",
      { ...validAppend, entries: [{ ...validAppend.entries[0], data: "x" }] },
      /bytes/,
    ],
    [
      "config with a duplicate",
      { ...validAppend, entries: [{ ...validAppend.entries[0], config: ["a", "a"] }] },
      /twice/,
    ],
    [
      "vote flag missing",
      { type: "request_vote", from: "a", to: "b", view: 2, lastSeqno: 0, lastView: 0 },
      /handover/,
    ],
  ] as const) {
    it(`refuses ${name}`, () => {
      const result = parseMessage(bad);
      assert.equal(result.ok, false);
      assert.match((result as { reason: string }).reason, reason);
    });
  }

  it("a node counts and drops malformed messages without changing state", () => {
    const c = primaryAndBackup();
    const b = c.raft("b");
    const before = b.status();
    b.step({ ...validAppend, entries: [{ ...validAppend.entries[0], seqno: 9 }] });
    b.step({ type: "heartbeat", from: "a", to: "someone-else", view: 1, commitSeqno: 4, round: 0 });
    b.step(null);
    assert.equal(b.stats.invalidMessages, 3);
    assert.deepEqual(b.status(), before);
    assert.equal(b.hasReady(), false);
  });

  it("never throws on arbitrary input, and stays consistent", () => {
    const c = primaryAndBackup();
    const nodes = ["a", "b", "c"].map((id) => c.raft(id));
    const types = [
      "pre_vote",
      "pre_vote_response",
      "request_vote",
      "request_vote_response",
      "append_entries",
      "append_entries_response",
      "heartbeat",
      "heartbeat_response",
      "timeout_now",
    ];
    const small = fc.nat({ max: 12 });
    const entry = fc.record({
      seqno: small,
      view: small,
      isSignature: fc.boolean(),
      data: fc.uint8Array({ maxLength: 4 }),
    });
    const shaped = fc.record({
      type: fc.constantFrom(...types),
      from: fc.constantFrom("a", "b", "c", "x"),
      to: fc.constantFrom("a", "b", "c"),
      view: small,
      lastSeqno: small,
      lastView: small,
      prevSeqno: small,
      prevView: small,
      commitSeqno: small,
      matchSeqno: small,
      durableSeqno: small,
      rejectedPrev: small,
      conflictView: small,
      conflictFirst: small,
      round: small,
      granted: fc.boolean(),
      success: fc.boolean(),
      handover: fc.boolean(),
      entries: fc.array(entry, { maxLength: 3 }),
    });
    fc.assert(
      fc.property(fc.array(fc.oneof(shaped, fc.anything()), { maxLength: 30 }), (messages) => {
        for (const message of messages) {
          const target = nodes[(message as { to?: string })?.to === "b" ? 1 : 0]!;
          target.step(message);
          if (target.hasReady()) target.advance(target.ready());
          assert.ok(target.commitSeqno <= target.lastSeqno);
        }
      }),
      { numRuns: 300 },
    );
  });
});

describe("restart", () => {
  it("keeps its vote across a restart from its hard state", () => {
    const config = { start: { seqno: 0, view: 0, config: ["a", "b", "c"] }, entries: [] };
    const first = new Raft({ id: "b", random: () => 0.5, log: config });
    first.step({
      type: "request_vote",
      from: "a",
      to: "b",
      view: 3,
      lastSeqno: 0,
      lastView: 0,
      handover: false,
    });
    const ready = first.ready();
    first.advance(ready);
    assert.deepEqual(ready.hardState, { view: 3, votedFor: "a" });
    const again = new Raft({ id: "b", random: () => 0.5, log: config, hardState: ready.hardState });
    again.step({
      type: "request_vote",
      from: "c",
      to: "b",
      view: 3,
      lastSeqno: 0,
      lastView: 0,
      handover: false,
    });
    const answer = again.ready().messages[0]?.message as { granted: boolean };
    assert.equal(answer.granted, false);
  });

  it("refuses a persisted state that contradicts itself", () => {
    const entries = [{ seqno: 1, view: 4, isSignature: true, data: data("x") }];
    const log = { start: { seqno: 0, view: 0, config: ["a"] }, entries };
    assert.throws(
      () => new Raft({ id: "a", random: () => 0, log, hardState: { view: 2, votedFor: null } }),
      /behind/,
    );
    const gap = { start: { seqno: 0, view: 0, config: ["a"] }, entries: [{ ...entries[0]!, seqno: 2 }] };
    assert.throws(() => new Raft({ id: "a", random: () => 0, log: gap }), /expected 1/);
    assert.throws(() => new Raft({ id: "", random: () => 0 }), /id/);
    assert.throws(() => new Raft({ id: "a", random: () => 0, electionTicksMin: 1 }), /electionTicksMin/);
  });

  it("ignores a durability report for an entry that was since replaced", () => {
    const c = primaryAndBackup();
    const b = c.raft("b");
    const durable = b.durableSeqno;
    b.persisted(4, 99);
    assert.equal(b.durableSeqno, durable);
  });
});
