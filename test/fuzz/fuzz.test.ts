import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { budget } from "../e2e/waits.ts";
import { runTarget } from "./harness.ts";
import { httpTarget } from "./http.ts";
import { nodePortTarget } from "./node-port.ts";
import { parserTargets } from "./targets.ts";

/**
 * The short fuzz run of `npm test`: every parser target, a bounded number of inputs from a fixed
 * seed (so a failure here replays with `npm run fuzz -- --runs N --seed 20 --target NAME`). The
 * long run is `npm run fuzz`; docs/testing.md keeps its figures.
 */
const SEED = 20;
const RUNS = 200;

describe("fuzzing every parser (short run)", async () => {
  for (const target of await parserTargets()) {
    it(`${target.name}: ${target.parser}`, async () => {
      const report = await runTarget(target, RUNS, SEED);
      assert.equal(report.failure, undefined, report.failure);
      // The inputs were hostile enough to be refused, and some were not refused at all.
      assert.ok(report.refused > 0, `${target.name}: no input was refused`);
    });
  }
  it("http: every endpoint of a running node answers hostile requests with a clear error", {
    timeout: budget(180_000),
  }, async () => {
    const report = await runTarget(httpTarget(), RUNS, SEED);
    assert.equal(report.failure, undefined, report.failure);
    assert.ok(report.refused > RUNS / 4, `only ${report.refused} requests refused`);
  });
  it("node-port: garbage on the node-to-node port leaves the service committing", {
    timeout: budget(180_000),
  }, async () => {
    const report = await runTarget(nodePortTarget(), 40, SEED);
    assert.equal(report.failure, undefined, report.failure);
  });
});
