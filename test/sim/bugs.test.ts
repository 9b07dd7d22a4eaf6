import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { UnsafeBugs } from "../../src/consensus/index.ts";
import type { NodeBugs } from "./node.ts";
import { runSeed, type SimOptions } from "./world.ts";

/** How many seeds the simulator gets to find each deliberate bug. */
const BUDGET = 150;

function firstFailure(
  bugs: Pick<SimOptions, "unsafe" | "nodeBugs">,
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
