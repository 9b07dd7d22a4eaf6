import assert from "node:assert/strict";
import { readdirSync } from "node:fs";
import { join } from "node:path";
import { describe, it } from "node:test";
import type { UnsafeBugs } from "../../src/consensus/index.ts";
import { runScenarioFile } from "../consensus/scenario-runner.ts";
import type { NodeBugs } from "./node-env.ts";
import { runSeed, type SimOptions } from "./world.ts";

/** How many seeds the simulator gets to find each deliberate bug. */
const BUDGET = 150;

function firstFailure(
  bugs: Pick<SimOptions, "unsafe" | "nodeBugs" | "workload">,
): { seed: number; message: string } | null {
  for (let seed = 0; seed < BUDGET; seed++) {
    const result = runSeed({ seed, ...bugs });
    if (!result.ok) return { seed, message: `${result.failure!.kind}: ${result.failure!.message}` };
  }
  return null;
}

describe("the simulator catches deliberate protocol bugs", () => {
  for (const [bug, expected] of [
    ["countStaleVotes", /two primaries in view/],
    ["voteTwice", /two primaries in view/],
    ["ignoreLogOnVote", /without committed entry|committed .* where .* was committed|linearizability/],
    ["commitNonSignature", /not a signature/],
  ] as const) {
    it(`${bug}`, () => {
      const bugs = { unsafe: { [bug]: true } as UnsafeBugs };
      const found = firstFailure(bugs);
      assert.ok(found, `${bug} went unnoticed for ${BUDGET} seeds`);
      assert.match(found.message, expected);
      // The failure replays exactly from its seed.
      const again = runSeed({ seed: found.seed, ...bugs });
      assert.equal(`${again.failure?.kind}: ${again.failure?.message}`, found.message);
    });
  }
  // A node that does not roll its engine back when consensus truncates its log.
  it("skipRollback", () => {
    const bugs = { nodeBugs: { skipRollback: true } as NodeBugs };
    const found = firstFailure(bugs);
    assert.ok(found, `skipRollback went unnoticed for ${BUDGET} seeds`);
    // The replica's own invariant catches it (src/node/replica.ts), or the checker's after-event check.
    assert.match(found.message, /consensus hands .* the ledger state holds view|engine ends at/);
    const again = runSeed({ seed: found.seed, ...bugs });
    assert.equal(`${again.failure?.kind}: ${again.failure?.message}`, found.message);
  });
});

/** The consensus scenario files (test/consensus/scenarios) that fail with `bug` planted. */
function scenariosCatching(bug: keyof UnsafeBugs): string[] {
  const dir = join(import.meta.dirname, "../consensus/scenarios");
  const caught: string[] = [];
  for (const file of readdirSync(dir).filter((f) => f.endsWith(".txt"))) {
    try {
      runScenarioFile(join(dir, file), { [bug]: true });
    } catch {
      caught.push(file);
    }
  }
  return caught;
}

describe("planted bugs the mixed workload misses", () => {
  // A primary that confirms linearizable reads without hearing from a quorum: every mixed seed
  // passes (a cut-off primary steps down about when the others elect). The stale-reads workload
  // keeps a client reading from the cut-off primary while another writes through the new one.
  it("readWithoutQuorum: caught by the stale-reads workload and by the read-index scenarios", () => {
    const bugs = { unsafe: { readWithoutQuorum: true }, workload: "stale-reads" as const };
    const found = firstFailure(bugs);
    assert.ok(found, `readWithoutQuorum went unnoticed for ${BUDGET} stale-reads seeds`);
    assert.match(found.message, /linearizability/);
    assert.ok(scenariosCatching("readWithoutQuorum").includes("read-index-cut-off-primary.txt"));
  });
  // Votes that let a longer log of an older view beat a newer view: the mixed workload finds it
  // only past seed 300. The rule has its own scenario, which catches it at once.
  it("longerLogWins: caught by the vote scenario", () => {
    assert.deepEqual(scenariosCatching("longerLogWins"), ["vote-newer-view-beats-longer-log.txt"]);
  });
});
