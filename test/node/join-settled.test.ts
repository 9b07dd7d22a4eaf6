import assert from "node:assert/strict";
import { test } from "node:test";
import type { RaftStatus } from "../../src/consensus/index.ts";
import { SettledPoints, settledSeqno } from "../../src/node/admission.ts";

/** A primary "a" in view 3 whose entries 1..20 are of view 3 unless `views` says otherwise. */
function primary(configs: string[][], matches: Record<string, number>, durable: number): RaftStatus {
  return {
    id: "a",
    role: "primary",
    view: 3,
    leader: "a",
    commitSeqno: 10,
    lastSeqno: 20,
    durableSeqno: durable,
    logStart: 0,
    configs: configs.map((nodes, i) => ({ seqno: i + 1, nodes })),
    peers: Object.fromEntries(
      Object.entries(matches).map(([id, match]) => [
        id,
        { match, next: match + 1, state: "replicate", inflight: 0 },
      ]),
    ) as RaftStatus["peers"],
    nonMemberMessages: 0,
  };
}
const inView3 = () => 3;

test("a joiner is answered from the commit point unless a majority of every configuration without it holds more", () => {
  // Three nodes, the joiner j trusted at 15: held by a and b (a majority of a, b, c) up to 14 only.
  const old = ["a", "b", "c"];
  const joint = ["a", "b", "c", "j"];
  assert.equal(settledSeqno(10, primary([old, joint], { b: 14, c: 10 }, 20), inView3, "j"), 14);
  // Only the primary itself holds the trust: nothing past the commit point is settled.
  assert.equal(settledSeqno(10, primary([old, joint], { b: 10, c: 10 }, 20), inView3, "j"), 10);
  // The primary's own entries count once durable.
  assert.equal(settledSeqno(10, primary([old, joint], { b: 20, c: 10 }, 12), inView3, "j"), 12);
  // A one-node service trusting its second node: the primary alone is the old configuration.
  assert.equal(settledSeqno(10, primary([["a"], ["a", "j"]], {}, 16), inView3, "j"), 16);
  // Every configuration without the joiner counts.
  assert.equal(settledSeqno(10, primary([["a", "b"], old, joint], { b: 18, c: 11 }, 20), inView3, "j"), 18);
  assert.equal(settledSeqno(10, primary([["a", "d"], old, joint], { b: 18, c: 11 }, 20), inView3, "j"), 10);
  // An entry of an earlier view held by a majority may still be replaced (Raft's figure 8).
  assert.equal(
    settledSeqno(10, primary([old, joint], { b: 14, c: 10 }, 20), () => 2, "j"),
    10,
  );
  // No configuration without the joiner: its trust is committed, so the commit point is enough.
  assert.equal(settledSeqno(10, primary([joint], { b: 20, c: 20 }, 20), inView3, "j"), 10);
  // A backup, or a node without consensus, knows nothing past its commit point.
  const backup = { ...primary([old, joint], { b: 20, c: 20 }, 20), role: "backup" as const };
  assert.equal(settledSeqno(10, backup, inView3, "j"), 10);
  assert.equal(settledSeqno(10, undefined, inView3, "j"), 10);
  // ...unless it alone is every configuration without the joiner: then what it holds durably,
  // whatever its role (it steps down when the new configuration's quorum needs the joiners).
  const alone = { ...primary([["a"], ["a", "j", "k"]], {}, 16), role: "backup" as const };
  assert.equal(
    settledSeqno(10, alone, () => 2, "j"),
    16,
  );
});

test("a point found settled while primary still answers the joiner after the primary steps down", () => {
  // Three nodes with c down; the joiner j trusted at 15, so every quorum of a, b, c, j needs j:
  // the primary a fails its quorum check an election time-out later and becomes a candidate that
  // no vote can elect until j runs. b acknowledged 15 while a was primary.
  const old = ["a", "b", "c"];
  const joint = ["a", "b", "c", "j"];
  const points = new SettledPoints();
  points.observe(10, primary([old, joint], { b: 12, c: 0 }, 20), inView3);
  points.observe(10, primary([old, joint], { b: 16, c: 0 }, 20), inView3);
  const candidate = { ...primary([old, joint], {}, 20), role: "candidate" as const, view: 4, leader: null };
  // On its own the rule gives the candidate only its commit point: j would wait for good.
  assert.equal(settledSeqno(10, candidate, inView3, "j"), 10);
  assert.equal(points.for("j", 10, candidate, inView3), 16);
  // Only joiners are tracked; a node of every configuration gets the rule's answer.
  assert.equal(points.for("b", 10, candidate, inView3), 10);
  // An observation as backup changes nothing; a primary with no change in flight forgets.
  points.observe(10, candidate, inView3);
  assert.equal(points.for("j", 10, candidate, inView3), 16);
  points.observe(20, primary([joint], { b: 20, c: 20, j: 20 }, 20), inView3);
  assert.equal(points.for("j", 10, candidate, inView3), 10);
});
