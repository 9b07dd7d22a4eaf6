import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { runSeed } from "./world.ts";

/** Seeds run by `npm test`; `npm run sim -- --seeds 10000` runs many more (docs/consensus.md). */
const SEEDS = 300;

describe("deterministic simulator", () => {
  it("replays a seed exactly: same trace, same outcome", () => {
    const first = runSeed({ seed: 11, trace: true });
    const second = runSeed({ seed: 11, trace: true });
    assert.ok(first.trace.length > 1000);
    assert.deepEqual(second.trace, first.trace);
    assert.deepEqual(second.stats, first.stats);
  });

  it("exercises what it claims to: faults, elections, commits, snapshots, reconfigurations", () => {
    const totals: Record<string, number> = {};
    for (let seed = 0; seed < 40; seed++) {
      for (const [key, value] of Object.entries(runSeed({ seed }).stats))
        totals[key] = (totals[key] ?? 0) + value;
    }
    for (const key of [
      "committed",
      "elections",
      "ops_ok",
      "snapshotsInstalled",
      "fault_crash",
      "fault_crash_primary",
      "fault_partition",
      "fault_pause",
      "fault_reconfigure",
    ]) {
      assert.ok((totals[key] ?? 0) > 0, `${key} never happened in 40 seeds`);
    }
  });

  it(`finds no safety, liveness or linearizability failure in ${SEEDS} seeds`, () => {
    const failures: string[] = [];
    let checked = 0;
    for (let seed = 0; seed < SEEDS; seed++) {
      const result = runSeed({ seed });
      if (result.linearizable === "ok") checked++;
      if (!result.ok) {
        const { kind, message } = result.failure!;
        failures.push(
          `seed ${seed}: ${kind}: ${message.split("\n")[0]} (replay: npm run sim -- --seed ${seed} --trace)`,
        );
      }
    }
    assert.deepEqual(failures, []);
    assert.ok(checked >= SEEDS * 0.95, `only ${checked} histories fully checked for linearizability`);
  });
});
