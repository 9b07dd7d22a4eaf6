import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { Prng } from "./prng.ts";

describe("Prng (xoshiro128**)", () => {
  it("matches the reference outputs for the state {1, 2, 3, 4}", () => {
    const prng = Prng.fromState([1, 2, 3, 4]);
    assert.deepEqual([prng.u32(), prng.u32(), prng.u32(), prng.u32()], [11520, 0, 5927040, 70819200]);
  });

  it("replays exactly from a seed, and different seeds differ", () => {
    const a = new Prng(42);
    const b = new Prng(42);
    const c = new Prng(43);
    const seqA = Array.from({ length: 8 }, () => a.u32());
    assert.deepEqual(
      seqA,
      Array.from({ length: 8 }, () => b.u32()),
    );
    assert.notDeepEqual(
      seqA,
      Array.from({ length: 8 }, () => c.u32()),
    );
  });

  it("draws floats in [0, 1) and integers in range, roughly uniformly", () => {
    const prng = new Prng(7);
    const buckets = new Array(10).fill(0);
    for (let i = 0; i < 20_000; i++) {
      const f = prng.float();
      assert.ok(f >= 0 && f < 1);
      buckets[Math.floor(f * 10)]++;
      const n = prng.between(3, 5);
      assert.ok(n >= 3 && n <= 5 && Number.isInteger(n));
    }
    for (const count of buckets) assert.ok(count > 1800 && count < 2200, `bucket count ${count}`);
  });
});
