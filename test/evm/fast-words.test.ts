import assert from "node:assert/strict";
import { test } from "node:test";
import fc from "fast-check";
import { getWord, putWord, wordBytes, wordOf } from "../../src/evm/fast/words.ts";

/** The fast interpreter's word conversions (src/evm/fast/words.ts) against hex, the plain way. */

const hexBytes = (v: bigint) => Uint8Array.from(Buffer.from(v.toString(16).padStart(64, "0"), "hex"));
const word = fc.oneof(
  fc.bigInt({ min: 0n, max: (1n << 256n) - 1n }),
  fc.bigInt({ min: 0n, max: (1n << 64n) + 5n }),
  fc.integer({ min: 0, max: 255 }).map((k) => 1n << BigInt(k)),
  fc.integer({ min: 1, max: 256 }).map((k) => (1n << BigInt(k)) - 1n),
);

test("256-bit words to bytes and back, at any offset, as hex would give them", () => {
  fc.assert(
    fc.property(word, fc.integer({ min: 0, max: 64 }), (v, at) => {
      const memory = new Uint8Array(128).fill(0xee);
      putWord(new DataView(memory.buffer), at, v);
      assert.deepEqual(memory.subarray(at, at + 32), hexBytes(v));
      assert.ok(memory.subarray(0, at).every((b) => b === 0xee));
      assert.ok(memory.subarray(at + 32).every((b) => b === 0xee));
      assert.equal(getWord(new DataView(memory.buffer), at), v);
      assert.deepEqual(wordBytes(v), hexBytes(v));
      const inside = new Uint8Array(40);
      inside.set(hexBytes(v), 3);
      assert.equal(wordOf(inside.subarray(3, 35)), v);
    }),
    { numRuns: 2000 },
  );
});
