import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { Raft } from "../../src/consensus/index.ts";

// Elections, votes, pre-vote and check-quorum are scenarios: test/consensus/scenarios/*.txt.
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
