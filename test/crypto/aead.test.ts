import assert from "node:assert/strict";
import { test } from "node:test";
import fc from "fast-check";
import { aesGcmDecrypt, aesGcmEncrypt } from "../../src/crypto/aead.ts";
import { CryptoError, fromHex, toHex } from "../../src/crypto/hash.ts";

const key32 = fc.uint8Array({ minLength: 32, maxLength: 32 });
const iv12 = fc.uint8Array({ minLength: 12, maxLength: 12 });

test("matches the GCM specification's AES-256 test cases 13 and 14 (ciphertext || tag)", () => {
  const key = new Uint8Array(32);
  const iv = new Uint8Array(12);
  assert.equal(toHex(aesGcmEncrypt(key, iv, new Uint8Array(0))), "530f8afbc74536b9a963b4f1c4cb738b");
  assert.equal(
    toHex(aesGcmEncrypt(key, iv, new Uint8Array(16))),
    "cea7403d4d606b6e074ec5d3baf39d18d0d1c8a799996bf0265b98b5d48ab919",
  );
  assert.deepEqual(
    aesGcmDecrypt(key, iv, fromHex("cea7403d4d606b6e074ec5d3baf39d18d0d1c8a799996bf0265b98b5d48ab919")),
    new Uint8Array(16),
  );
});

test("round-trips any plaintext and AAD", () => {
  fc.assert(
    fc.property(
      key32,
      iv12,
      fc.uint8Array({ maxLength: 200 }),
      fc.option(fc.uint8Array({ maxLength: 40 })),
      (key, iv, pt, aad) => {
        const sealed = aesGcmEncrypt(key, iv, pt, aad ?? undefined);
        assert.equal(sealed.length, pt.length + 16);
        assert.deepEqual(aesGcmDecrypt(key, iv, sealed, aad ?? undefined), pt);
      },
    ),
  );
});

test("any flipped bit in ciphertext or tag is refused", () => {
  fc.assert(
    fc.property(
      key32,
      iv12,
      fc.uint8Array({ maxLength: 64 }),
      fc.nat(),
      fc.integer({ min: 0, max: 7 }),
      (key, iv, pt, pos, bit) => {
        const sealed = aesGcmEncrypt(key, iv, pt);
        const i = pos % sealed.length;
        sealed[i] = (sealed[i] ?? 0) ^ (1 << bit);
        assert.throws(() => aesGcmDecrypt(key, iv, sealed), CryptoError);
      },
    ),
  );
});

test("wrong key, IV or AAD is refused", () => {
  const key = new Uint8Array(32).fill(7);
  const iv = new Uint8Array(12).fill(1);
  const aad = new TextEncoder().encode("map:private:accounts");
  const sealed = aesGcmEncrypt(key, iv, new TextEncoder().encode("balance=100"), aad);
  assert.throws(
    () => aesGcmDecrypt(key, iv, sealed, new TextEncoder().encode("map:private:other")),
    /authentication failed/,
  );
  assert.throws(() => aesGcmDecrypt(key, iv, sealed), CryptoError);
  assert.throws(() => aesGcmDecrypt(new Uint8Array(32).fill(8), iv, sealed, aad), CryptoError);
  assert.throws(() => aesGcmDecrypt(key, new Uint8Array(12).fill(2), sealed, aad), CryptoError);
  assert.equal(new TextDecoder().decode(aesGcmDecrypt(key, iv, sealed, aad)), "balance=100");
});

test("bad sizes are refused with a clear error", () => {
  const iv = new Uint8Array(12);
  assert.throws(
    () => aesGcmEncrypt(new Uint8Array(31), iv, new Uint8Array(1)),
    /key must be 16, 24 or 32 bytes, got 31/,
  );
  assert.throws(
    () => aesGcmEncrypt(new Uint8Array(32), new Uint8Array(16), new Uint8Array(1)),
    /IV must be 12 bytes/,
  );
  assert.throws(
    () => aesGcmDecrypt(new Uint8Array(32), iv, new Uint8Array(15)),
    /shorter than its 16-byte tag/,
  );
  // AES-128 keys work too, and are a different cipher from AES-256.
  const k16 = new Uint8Array(16);
  assert.deepEqual(aesGcmDecrypt(k16, iv, aesGcmEncrypt(k16, iv, Uint8Array.of(1, 2))), Uint8Array.of(1, 2));
});
