import assert from "node:assert/strict";
import { before, describe, it } from "node:test";
import { runSeed, type SimResult } from "./world.ts";

/**
 * Seeds run by `npm test` (about 0.5 s each: every node runs the real engine, signing and
 * verifying P-384 signatures); `npm run sim -- --seeds 1000` runs many more (docs/consensus.md).
 */
const SEEDS = 200;
/** Seeds of the stale-reads workload (test/sim/stale-reads.ts), each a few times a mixed one. */
const STALE_READ_SEEDS = 10;

describe("deterministic simulator", () => {
  let results: SimResult[] = [];
  before(() => {
    results = Array.from({ length: SEEDS }, (_, seed) => runSeed({ seed }));
  });

  it("replays a seed exactly: same trace, same outcome", () => {
    const first = runSeed({ seed: 11, trace: true });
    const second = runSeed({ seed: 11, trace: true });
    assert.ok(first.trace.length > 1000);
    assert.deepEqual(second.trace, first.trace);
    assert.deepEqual(second.stats, first.stats);
  });

  it(`finds no safety, liveness or linearizability failure in ${SEEDS} seeds`, () => {
    const failures = results
      .filter((r) => !r.ok)
      .map(
        (r) =>
          `seed ${r.seed}: ${r.failure!.kind}: ${r.failure!.message.split("\n")[0]} (replay: npm run sim -- --seed ${r.seed} --trace)`,
      );
    assert.deepEqual(failures, []);
    const checked = results.filter((r) => r.linearizable === "ok").length;
    assert.ok(checked >= SEEDS * 0.95, `only ${checked} histories fully checked for linearizability`);
  });

  it(`finds no failure in ${STALE_READ_SEEDS} seeds of the stale-reads workload`, () => {
    for (let seed = 0; seed < STALE_READ_SEEDS; seed++) {
      const result = runSeed({ seed, workload: "stale-reads" });
      assert.ok(
        result.ok,
        `seed ${seed}: ${result.failure?.kind}: ${result.failure?.message.split("\n")[0]}`,
      );
      assert.ok((result.stats.elections ?? 0) >= 3, `seed ${seed}: the cut-off primaries were replaced`);
    }
  });

  it("exercises what it claims to: faults, elections, commits, snapshots, receipts, replays", () => {
    const totals: Record<string, number> = {};
    for (const result of results) {
      for (const [key, value] of Object.entries(result.stats)) totals[key] = (totals[key] ?? 0) + value;
    }
    for (const key of [
      "committed",
      "signatures",
      "elections",
      "ops_ok",
      "snapshotsTaken",
      "snapshotsInstalled",
      "receiptsVerified",
      "receiptsRebuilt",
      "replays",
      "fault_crash",
      "fault_crash_primary",
      "fault_partition",
      "fault_pause",
      "fault_reconfigure",
    ]) {
      assert.ok((totals[key] ?? 0) > 0, `${key} never happened in ${SEEDS} seeds`);
    }
    // Every live node is checked at the end: receipts on each, and a replay of each distinct ledger.
    assert.ok(results.every((r) => (r.stats.receiptsVerified ?? 0) > 0 && (r.stats.replays ?? 0) > 0));
  });
});
