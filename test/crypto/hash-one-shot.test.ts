/** sha256 through one-shot hashing: the same digests as a streaming hash, as plain, unshared bytes. */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { test } from "node:test";
import fc from "fast-check";
import { sha256, sha256Utf8, sha384 } from "../../src/crypto/index.ts";

const reference = (algorithm: string, parts: Uint8Array[]) => {
  const h = createHash(algorithm);
  for (const part of parts) h.update(part);
  return new Uint8Array(h.digest());
};

test("sha256 and sha384 of any parts equal a streaming hash of their concatenation", () => {
  fc.assert(
    fc.property(fc.array(fc.uint8Array({ maxLength: 700 }), { maxLength: 5 }), (parts) => {
      assert.deepEqual(sha256(...parts), reference("sha256", parts));
      assert.deepEqual(sha384(...parts), reference("sha384", parts));
    }),
    { numRuns: 300 },
  );
});

test("views into a larger buffer hash only their own bytes", () => {
  const backing = new Uint8Array(100).map((_, i) => i);
  const view = backing.subarray(10, 42);
  assert.deepEqual(sha256(view), reference("sha256", [Uint8Array.from(view)]));
  assert.deepEqual(sha256(view, view), reference("sha256", [view, view]));
});

test("a digest is a plain Uint8Array with memory of its own (it pins nothing)", () => {
  for (const digest of [sha256(new Uint8Array(3)), sha256(new Uint8Array(5000)), sha256Utf8("x")]) {
    assert.equal(Object.getPrototypeOf(digest), Uint8Array.prototype);
    assert.equal(digest.length, 32);
    assert.equal(digest.buffer.byteLength, 32);
  }
});

test("sha256Utf8 hashes the UTF-8 bytes of the text", () => {
  fc.assert(
    fc.property(fc.string({ unit: "grapheme" }), (text) => {
      assert.deepEqual(sha256Utf8(text), reference("sha256", [new TextEncoder().encode(text)]));
    }),
    { numRuns: 200 },
  );
});
