import assert from "node:assert/strict";
import { test } from "node:test";
import fc from "fast-check";
import { CryptoError, equalBytes, fromHex, sha256, sha384, toHex } from "../../src/crypto/hash.ts";

const utf8 = (s: string) => new TextEncoder().encode(s);

test("sha256 and sha384 match the FIPS 180 'abc' vectors", () => {
  assert.equal(
    toHex(sha256(utf8("abc"))),
    "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
  );
  assert.equal(
    toHex(sha384(utf8("abc"))),
    "cb00753f45a35e8bb5a03d699ac65007272c32ab0eded1631a8b605a43ff5bed8086072ba1e7cc2358baeca134c825a7",
  );
  assert.equal(toHex(sha256()), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
});

test("hashing parts equals hashing their concatenation", () => {
  fc.assert(
    fc.property(fc.array(fc.uint8Array({ maxLength: 40 }), { maxLength: 5 }), (parts) => {
      const joined = Uint8Array.from(parts.flatMap((p) => [...p]));
      assert.deepEqual(sha256(...parts), sha256(joined));
      assert.deepEqual(sha384(...parts), sha384(joined));
    }),
  );
});

test("hex round-trips, lowercase out, either case in", () => {
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 64 }), (bytes) => {
      const hex = toHex(bytes);
      assert.match(hex, /^[0-9a-f]*$/);
      assert.equal(hex.length, bytes.length * 2);
      assert.deepEqual(fromHex(hex), bytes);
      assert.deepEqual(fromHex(hex.toUpperCase()), bytes);
    }),
  );
  // A view into a larger buffer must encode only its own bytes.
  const big = Uint8Array.from([1, 2, 3, 4, 5]);
  assert.equal(toHex(big.subarray(1, 3)), "0203");
});

test("fromHex refuses odd lengths and non-hex characters, saying where", () => {
  assert.throws(
    () => fromHex("abc"),
    (e: unknown) => e instanceof CryptoError && /odd length 3/.test(e.message),
  );
  for (const bad of ["0g", " 0", "0x00", "zz", "00-1", "é0"]) {
    assert.throws(() => fromHex(bad), CryptoError, bad);
  }
  assert.throws(() => fromHex("0a0g"), /"g" at offset 3/);
  assert.deepEqual(fromHex(""), new Uint8Array(0));
});

test("equalBytes is true exactly when contents match", () => {
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 32 }), fc.uint8Array({ maxLength: 32 }), (a, b) => {
      const same = a.length === b.length && a.every((x, i) => x === b[i]);
      assert.equal(equalBytes(a, b), same);
      assert.equal(equalBytes(a, Uint8Array.from(a)), true);
    }),
  );
  assert.equal(equalBytes(Uint8Array.of(1, 2), Uint8Array.of(1, 2, 0)), false);
});
