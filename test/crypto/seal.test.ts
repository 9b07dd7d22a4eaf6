import assert from "node:assert/strict";
import { test } from "node:test";
import fc from "fast-check";
import { CryptoError } from "../../src/crypto/hash.ts";
import { readSealHeader, sealingKeyFrom, sealJson, unsealJson } from "../../src/crypto/seal.ts";

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
  const v3 = Uint8Array.from(sealed);
  v3[8] = 3;
  assert.throws(() => unsealJson(key, "node-key", v3), /envelope version 3; only 1 and 2 are known/);
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

const header = { source: "snp-derived-key", tcbVersion: "04000000000018db", guestSvn: 2 };

test("version 2 carries a clear, authenticated header that says how to get the key again", () => {
  const sealed = sealJson(key, "node-identity", secret, iv, header);
  assert.equal(sealed[8], 2);
  assert.deepEqual(readSealHeader("node-identity", sealed), { version: 2, header });
  assert.deepEqual(readSealHeader("node-identity", sealJson(key, "x", 1, iv)), { version: 1 });
  assert.deepEqual(unsealJson(key, "node-identity", sealed), secret);
  assert.equal(Buffer.from(sealed).includes("a1b2c3d4"), false);
  // The header is bound: editing it (say, to claim an older TCB) breaks the tag.
  const text = Buffer.from(sealed).toString("latin1");
  const edited = Buffer.from(text.replace('"guestSvn":2', '"guestSvn":1'), "latin1");
  assert.notDeepEqual(new Uint8Array(edited), sealed);
  assert.deepEqual(readSealHeader("node-identity", new Uint8Array(edited)), {
    version: 2,
    header: { ...header, guestSvn: 1 },
  });
  assert.throws(() => unsealJson(key, "node-identity", new Uint8Array(edited)), /cannot unseal/);
  for (let i = 0; i < sealed.length; i++) {
    const copy = Uint8Array.from(sealed);
    copy[i] = (copy[i] ?? 0) ^ 0x01;
    assert.throws(() => unsealJson(key, "node-identity", copy), CryptoError, `byte ${i}`);
  }
});

test("a version 2 header that its envelope cannot hold, or that is not an object, is refused", () => {
  const sealed = sealJson(key, "l", secret, iv, header);
  const long = Uint8Array.from(sealed);
  long[9] = 0xff;
  assert.throws(() => readSealHeader("l", long), /header length/);
  assert.throws(() => sealJson(key, "l", 1, iv, [] as unknown as Record<string, unknown>), /JSON object/);
  assert.throws(() => sealJson(key, "l", 1, iv, { big: "x".repeat(5000) }), /more than 4096/);
});

test("the sealing key is HKDF of the platform key: never the platform key itself, and one per platform key", () => {
  const platform = new Uint8Array(32).fill(7);
  const derived = sealingKeyFrom(platform);
  assert.equal(derived.length, 32);
  assert.notDeepEqual(derived, platform);
  assert.deepEqual(sealingKeyFrom(platform), derived);
  assert.notDeepEqual(sealingKeyFrom(new Uint8Array(32).fill(8)), derived);
  assert.throws(() => sealingKeyFrom(new Uint8Array(16)), /platform key must be 32 bytes/);
  const sealed = sealJson(derived, "l", secret, iv, header);
  assert.throws(() => unsealJson(platform, "l", sealed), /cannot unseal/);
});
