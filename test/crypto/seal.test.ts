import assert from "node:assert/strict";
import { test } from "node:test";
import fc from "fast-check";
import { CryptoError } from "../../src/crypto/hash.ts";
import { sealJson, unsealJson } from "../../src/crypto/seal.ts";

const key = new Uint8Array(32).fill(0x42);
const iv = Uint8Array.from({ length: 12 }, (_, i) => i);
const secret = { ledgerSecret: "a1b2c3d4e5f60718293a4b5c6d7e8f90", version: 3, nodes: ["n1", "n2"] };

test("round-trips JSON values", () => {
  const sealed = sealJson(key, "ledger-secret", secret, iv);
  assert.deepEqual(unsealJson(key, "ledger-secret", sealed), secret);
  fc.assert(
    fc.property(fc.jsonValue(), fc.string({ minLength: 1, maxLength: 30 }), (value, label) => {
      const out = unsealJson(key, label, sealJson(key, label, value, iv));
      assert.deepEqual(out, JSON.parse(JSON.stringify(value)));
    }),
  );
});

test("the envelope is versioned, carries its IV, and never holds the secret in clear", () => {
  const sealed = sealJson(key, "ledger-secret", secret, iv);
  assert.equal(new TextDecoder().decode(sealed.subarray(0, 8)), "cocoseal");
  assert.equal(sealed[8], 1);
  assert.deepEqual(sealed.subarray(9, 21), iv);
  assert.equal(Buffer.from(sealed).includes("a1b2c3d4"), false);
  // Deterministic given the IV, so a simulated run replays byte for byte.
  assert.deepEqual(sealJson(key, "ledger-secret", secret, iv), sealed);
});

test("a wrong label or key is refused", () => {
  const sealed = sealJson(key, "node-key", secret, iv);
  assert.throws(() => unsealJson(key, "ledger-secret", sealed), /cannot unseal "ledger-secret"/);
  assert.throws(() => unsealJson(new Uint8Array(32).fill(0x43), "node-key", sealed), CryptoError);
});

test("any altered byte, header included, is refused", () => {
  const sealed = sealJson(key, "node-key", secret, iv);
  for (let i = 0; i < sealed.length; i++) {
    const copy = Uint8Array.from(sealed);
    copy[i] = (copy[i] ?? 0) ^ 0x01;
    assert.throws(() => unsealJson(key, "node-key", copy), CryptoError, `byte ${i}`);
  }
  assert.throws(() => unsealJson(key, "node-key", sealed.subarray(0, 36)), /too short/);
  const badMagic = Uint8Array.from(sealed);
  badMagic[0] = 0x78;
  assert.throws(() => unsealJson(key, "node-key", badMagic), /bad magic/);
  const v2 = Uint8Array.from(sealed);
  v2[8] = 2;
  assert.throws(() => unsealJson(key, "node-key", v2), /envelope version 2/);
});

test("bad inputs are refused before anything is sealed", () => {
  assert.throws(() => sealJson(new Uint8Array(16), "x", 1, iv), /sealing key must be 32 bytes/);
  assert.throws(() => sealJson(key, "", 1, iv), /label must be a non-empty string/);
  assert.throws(() => sealJson(key, "x", 1, new Uint8Array(8)), /IV must be 12 bytes/);
  assert.throws(() => sealJson(key, "x", undefined, iv), /not JSON-serialisable/);
  assert.throws(() => sealJson(key, "x", { n: 1n }, iv), /not JSON-serialisable/);
  const cyclic: Record<string, unknown> = {};
  cyclic.self = cyclic;
  assert.throws(() => sealJson(key, "x", cyclic, iv), CryptoError);
  assert.throws(
    () => unsealJson(new Uint8Array(31), "x", new Uint8Array(64)),
    /sealing key must be 32 bytes/,
  );
});
