import assert from "node:assert/strict";
import { createHash, createPrivateKey, createPublicKey, generateKeyPairSync, verify } from "node:crypto";
import { test } from "node:test";
import fc from "fast-check";
import { createIdentityCertificate } from "../../src/crypto/certs.ts";
import { CryptoError } from "../../src/crypto/hash.ts";
import {
  curveOf,
  generateEcKeyPair,
  generateP384KeyPair,
  nodeIdOf,
  publicKeyDer,
  signP384,
  verifyP384,
} from "../../src/crypto/keys.ts";

const alice = generateP384KeyPair();
const bob = generateP384KeyPair();
const data = new TextEncoder().encode("root 1f2e3d at 4.17");

test("generates P-384 PEM pairs", () => {
  assert.match(alice.privateKeyPem, /^-----BEGIN PRIVATE KEY-----\n/);
  assert.match(alice.publicKeyPem, /^-----BEGIN PUBLIC KEY-----\n/);
  assert.equal(createPublicKey(alice.publicKeyPem).asymmetricKeyDetails?.namedCurve, "secp384r1");
  assert.notEqual(alice.publicKeyPem, bob.publicKeyPem);
});

test("signs DER ECDSA/SHA-384 that node:crypto verifies, and verifies its own", () => {
  const sig = signP384(alice.privateKeyPem, data);
  assert.equal(sig[0], 0x30, "DER SEQUENCE");
  assert.equal(verify("sha384", data, createPublicKey(alice.publicKeyPem), sig), true);
  assert.equal(verifyP384(alice.publicKeyPem, data, sig), true);
  // KeyObjects work as well as PEM, and a private key stands for its public half.
  const priv = createPrivateKey(alice.privateKeyPem);
  assert.equal(verifyP384(createPublicKey(alice.publicKeyPem), data, signP384(priv, data)), true);
  assert.equal(verifyP384(priv, data, sig), true);
});

test("tampered data, tampered signature or another key fail verification", () => {
  const sig = signP384(alice.privateKeyPem, data);
  const otherData = Uint8Array.from(data);
  otherData[0] = (otherData[0] ?? 0) ^ 1;
  assert.equal(verifyP384(alice.publicKeyPem, otherData, sig), false);
  assert.equal(verifyP384(bob.publicKeyPem, data, sig), false);
  for (let i = 0; i < sig.length; i += 7) {
    const bad = Uint8Array.from(sig);
    bad[i] = (bad[i] ?? 0) ^ 0x10;
    assert.equal(verifyP384(alice.publicKeyPem, data, bad), false, `byte ${i}`);
  }
});

test("malformed signature bytes give false, never an exception", () => {
  const sig = signP384(alice.privateKeyPem, data);
  assert.equal(verifyP384(alice.publicKeyPem, data, new Uint8Array(0)), false);
  assert.equal(verifyP384(alice.publicKeyPem, data, sig.subarray(0, 20)), false);
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 120 }), (junk) => {
      assert.equal(verifyP384(alice.publicKeyPem, data, junk), false);
    }),
    { numRuns: 200 },
  );
});

test("keys of the wrong kind or unreadable PEM are refused", () => {
  const p521 = generateKeyPairSync("ec", { namedCurve: "secp521r1" });
  const p521Pem = p521.privateKey.export({ type: "pkcs8", format: "pem" }).toString();
  assert.throws(() => signP384(p521Pem, data), /must be an ECDSA P-384 .* or P-256 .* got EC secp521r1/);
  assert.throws(() => verifyP384(p521.publicKey, data, new Uint8Array(8)), CryptoError);
  const ed = generateKeyPairSync("ed25519");
  assert.throws(() => signP384(ed.privateKey, data), /got ed25519/);
  assert.throws(() => signP384("not a key", data), /not a readable PEM private key/);
  assert.throws(() => signP384(createPublicKey(alice.publicKeyPem), data), /must be a private key/);
  assert.throws(
    () => verifyP384("-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n", data, data),
    CryptoError,
  );
  assert.throws(() => publicKeyDer(alice.privateKeyPem), /got a private key/);
});

test("node id is hex SHA-256 of the SPKI DER, the same from the key or its certificate", async () => {
  const expected = createHash("sha256")
    .update(createPublicKey(alice.publicKeyPem).export({ type: "spki", format: "der" }))
    .digest("hex");
  assert.equal(nodeIdOf(alice.publicKeyPem), expected);
  assert.match(expected, /^[0-9a-f]{64}$/);
  assert.notEqual(nodeIdOf(bob.publicKeyPem), expected);
  const { certPem, privateKeyPem } = await createIdentityCertificate({
    name: "n",
    now: new Date("2025-01-01T00:00:00Z"),
    serial: Uint8Array.of(1),
  });
  const keyOfCert = createPublicKey(privateKeyPem).export({ type: "spki", format: "pem" }).toString();
  assert.deepEqual(publicKeyDer(certPem), publicKeyDer(keyOfCert));
  assert.equal(nodeIdOf(certPem), nodeIdOf(keyOfCert));
});

test("a P-256 service's keys sign with SHA-256 and verify; the curves do not mix", () => {
  const p256 = generateEcKeyPair("secp256r1");
  assert.equal(curveOf(p256.privateKeyPem), "secp256r1");
  assert.equal(curveOf(p256.publicKeyPem), "secp256r1");
  assert.equal(curveOf(alice.publicKeyPem), "secp384r1");
  const sig = signP384(p256.privateKeyPem, data);
  assert.equal(verifyP384(p256.publicKeyPem, data, sig), true);
  // CCF's pairing: ECDSA P-256 with SHA-256 (checked with node:crypto directly).
  assert.equal(verify("sha256", data, createPublicKey(p256.publicKeyPem), sig), true);
  assert.equal(verifyP384(alice.publicKeyPem, data, sig), false);
  assert.equal(verifyP384(p256.publicKeyPem, Uint8Array.of(1, 2, 3), sig), false);
  assert.throws(() => generateEcKeyPair("secp521r1" as never), /curve must be one of/);
});
