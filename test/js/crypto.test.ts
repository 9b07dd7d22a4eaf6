import assert from "node:assert/strict";
import {
  constants,
  createHash,
  createPrivateKey,
  createPublicKey,
  generateKeyPairSync,
  sign,
  verify,
} from "node:crypto";
import { test } from "node:test";
import {
  certFingerprint,
  createIdentityCertificate,
  createServiceIdentity,
  generateP384KeyPair,
  issueNodeCertificate,
} from "../../src/crypto/index.ts";
import { createJsEngine, JsError } from "../../src/js/index.ts";

let clock = Date.parse("2025-06-01T00:00:00Z");
let nextByte = 0;
const engine = await createJsEngine({
  env: { now: () => clock, randomBytes: (n) => Uint8Array.from({ length: n }, () => nextByte++ & 0xff) },
});
const modules = {
  "c.js": `
    export function crypto(name, ...args) { return ccf.crypto[name](...args); }
    export function top(name, ...args) { return ccf[name](...args); }
    export function aliases() { return ["digest", "wrapKey", "isValidX509CertBundle"].every((n) => ccf[n] === ccf.crypto[n]); }
    export function pemToId(pem) { return ccf.pemToId(pem); }
  `,
};

function js(name: string, ...args: unknown[]): unknown {
  return engine.call({ modules, entry: "c.js", fn: "crypto", args: [name, ...args] });
}

function jsFails(pattern: RegExp, name: string, ...args: unknown[]): void {
  assert.throws(
    () => js(name, ...args),
    (error: unknown) => error instanceof JsError && error.kind === "exception" && pattern.test(error.message),
  );
}

const utf8 = (s: string) => new TextEncoder().encode(s);
const now = new Date(clock);
const member = await createIdentityCertificate({ name: "member0", now, serial: new Uint8Array([1]) });
const other = await createIdentityCertificate({ name: "member1", now, serial: new Uint8Array([2]) });
const service = await createServiceIdentity({ now, serial: new Uint8Array([3]) });
const nodeCert = await issueNodeCertificate({
  service,
  nodePublicKeyPem: generateP384KeyPair().publicKeyPem,
  now,
  serial: new Uint8Array([4]),
});

test("digest hashes with SHA-256/384/512; the deprecated ccf.* aliases are the same functions", () => {
  const data = utf8("coco");
  for (const [name, node] of [
    ["SHA-256", "sha256"],
    ["SHA-384", "sha384"],
    ["SHA-512", "sha512"],
  ]) {
    assert.deepEqual(
      js("digest", name, data),
      new Uint8Array(
        createHash(node as string)
          .update(data)
          .digest(),
      ),
    );
  }
  jsFails(/must be one of SHA-256/, "digest", "MD5", data);
  jsFails(/digest: data must be an ArrayBuffer/, "digest", "SHA-256", "text");
  assert.equal(engine.call({ modules, entry: "c.js", fn: "aliases" }), true);
});

test("isValidX509CertBundle accepts one or more certificates and nothing else", () => {
  assert.equal(js("isValidX509CertBundle", member.certPem), true);
  assert.equal(js("isValidX509CertBundle", `${member.certPem}\n${other.certPem}`), true);
  assert.equal(js("isValidX509CertBundle", "not a certificate"), false);
  assert.equal(js("isValidX509CertBundle", ""), false);
  assert.equal(js("isValidX509CertBundle", `${member.certPem}\ntrailing junk`), false);
  const lines = member.certPem.trim().split("\n");
  const broken = [...lines.slice(0, 3), ...lines.slice(4)].join("\n");
  assert.notEqual(broken, member.certPem.trim());
  assert.equal(js("isValidX509CertBundle", broken), false);
  assert.equal(js("isValidX509CertBundle", member.privateKeyPem), false);
});

test("pemToId is the hex SHA-256 of the certificate DER (the member/user id)", () => {
  const id = engine.call({ modules, entry: "c.js", fn: "pemToId", args: [member.certPem] });
  assert.equal(id, certFingerprint(member.certPem));
  assert.match(id as string, /^[0-9a-f]{64}$/);
  assert.throws(
    () => engine.call({ modules, entry: "c.js", fn: "pemToId", args: ["nope"] }),
    /not a PEM certificate/,
  );
});

test("isValidX509CertChain checks issuers, trust anchors and validity at the engine's clock", () => {
  assert.equal(js("isValidX509CertChain", nodeCert, service.certPem), true);
  assert.equal(js("isValidX509CertChain", `${nodeCert}\n${service.certPem}`, service.certPem), true);
  assert.equal(js("isValidX509CertChain", nodeCert, other.certPem), false);
  assert.equal(js("isValidX509CertChain", "junk", service.certPem), false);
  const saved = clock;
  clock = Date.parse("2100-01-01T00:00:00Z");
  try {
    assert.equal(js("isValidX509CertChain", nodeCert, service.certPem), false, "expired");
  } finally {
    clock = saved;
  }
});

test("ECDSA signatures are IEEE P1363 both ways; certificates work as verification keys", () => {
  const data = utf8("signed statement");
  const p256 = generateKeyPairSync("ec", { namedCurve: "prime256v1" });
  const privatePem = p256.privateKey.export({ type: "pkcs8", format: "pem" }) as string;
  const publicPem = p256.publicKey.export({ type: "spki", format: "pem" }) as string;
  const algorithm = { name: "ECDSA", hash: "SHA-256" };
  const signature = js("sign", algorithm, privatePem, data) as Uint8Array;
  assert.equal(signature.length, 64);
  assert.ok(verify("sha256", data, { key: p256.publicKey, dsaEncoding: "ieee-p1363" }, signature));
  assert.equal(js("verifySignature", algorithm, publicPem, signature, data), true);
  assert.equal(js("verifySignature", algorithm, publicPem, signature, utf8("other")), false);

  const byMember = sign("sha384", data, {
    key: createPrivateKey(member.privateKeyPem),
    dsaEncoding: "ieee-p1363",
  });
  assert.equal(
    js("verifySignature", { name: "ECDSA", hash: "SHA-384" }, member.certPem, byMember, data),
    true,
  );
  assert.equal(
    js("verifySignature", { name: "ECDSA", hash: "SHA-384" }, other.certPem, byMember, data),
    false,
  );
  jsFails(
    /must be a ed25519 or ed448 key, got ec/,
    "verifySignature",
    { name: "EdDSA" },
    publicPem,
    signature,
    data,
  );
  jsFails(/algorithm\.name must be one of/, "verifySignature", { name: "DSA" }, publicPem, signature, data);
});

test("RSA-PSS, EdDSA and HMAC signatures", () => {
  const data = utf8("payload");
  const rsa = js("generateRsaKeyPair", 2048) as { privateKey: string; publicKey: string };
  const pss = { name: "RSA-PSS", hash: "SHA-256", saltLength: 32 };
  const rsaSignature = js("sign", pss, rsa.privateKey, data) as Uint8Array;
  assert.ok(
    verify(
      "sha256",
      data,
      { key: createPublicKey(rsa.publicKey), padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: 32 },
      rsaSignature,
    ),
  );
  assert.equal(js("verifySignature", pss, rsa.publicKey, rsaSignature, data), true);

  const ed = js("generateEddsaKeyPair", "curve25519") as { privateKey: string; publicKey: string };
  const edSignature = js("sign", { name: "EdDSA" }, ed.privateKey, data) as Uint8Array;
  assert.ok(verify(null, data, createPublicKey(ed.publicKey), edSignature));
  assert.equal(js("verifySignature", { name: "EdDSA" }, ed.publicKey, edSignature, data), true);

  const mac = js("sign", { name: "HMAC", hash: "SHA-256" }, "secret", data) as Uint8Array;
  assert.equal(mac.length, 32);
});

test("key generation: AES keys come from the injected random source; curves and sizes are checked", () => {
  nextByte = 7;
  assert.deepEqual(
    js("generateAesKey", 128),
    Uint8Array.from({ length: 16 }, (_, i) => 7 + i),
  );
  jsFails(/size must be 128, 192 or 256/, "generateAesKey", 100);
  const ec = js("generateEcdsaKeyPair", "secp384r1") as { privateKey: string; publicKey: string };
  assert.equal(createPublicKey(ec.publicKey).asymmetricKeyDetails?.namedCurve, "secp384r1");
  jsFails(/curve must be secp256r1 or secp384r1/, "generateEcdsaKeyPair", "secp521r1");
  jsFails(/size must be an integer from 2048/, "generateRsaKeyPair", 1024);
  const x = js("generateEddsaKeyPair", "x25519") as { publicKey: string };
  assert.equal(createPublicKey(x.publicKey).asymmetricKeyType, "x25519");
});

test("AES-KWP matches RFC 5649's test vector and unwraps", () => {
  const kek = Buffer.from("5840df6e29b02af1ab493b705bf16ea1ae8338f4dcc176a8", "hex");
  const key = Buffer.from("c37b7e6492584340bed12207808941155068f738", "hex");
  const wrapped = js("wrapKey", key, kek, { name: "AES-KWP" }) as Uint8Array;
  assert.equal(
    Buffer.from(wrapped).toString("hex"),
    "138bdeaa9b8fa7fc61f97742e72248ee5ae6ae5360d1ae6a5f54f373fa543b6a",
  );
  assert.deepEqual(js("unwrapKey", wrapped, kek, { name: "AES-KWP" }), new Uint8Array(key));
  const tampered = Uint8Array.from(wrapped, (b, i) => (i === 0 ? b ^ 1 : b));
  jsFails(/./, "unwrapKey", tampered, kek, { name: "AES-KWP" });
  jsFails(/128, 192 or 256-bit AES key/, "wrapKey", key, new Uint8Array(5), { name: "AES-KWP" });
});

test("RSA-OAEP and RSA-OAEP-AES-KWP wrap for an RSA public key and unwrap with its private key", () => {
  const rsa = generateKeyPairSync("rsa", { modulusLength: 2048 });
  const publicPem = utf8(rsa.publicKey.export({ type: "spki", format: "pem" }) as string);
  const privatePem = utf8(rsa.privateKey.export({ type: "pkcs8", format: "pem" }) as string);
  const secret = utf8("ledger secret, 32 bytes long....");
  const label = utf8("label");
  const oaep = js("wrapKey", secret, publicPem, { name: "RSA-OAEP", label }) as Uint8Array;
  assert.equal(oaep.length, 256);
  assert.deepEqual(js("unwrapKey", oaep, privatePem, { name: "RSA-OAEP", label }), secret);
  jsFails(/./, "unwrapKey", oaep, privatePem, { name: "RSA-OAEP", label: utf8("other") });

  const big = new Uint8Array(1000).fill(42);
  const hybrid = { name: "RSA-OAEP-AES-KWP", aesKeySize: 256 };
  const wrapped = js("wrapKey", big, publicPem, hybrid) as Uint8Array;
  assert.equal(wrapped.length, 256 + 1008);
  assert.deepEqual(js("unwrapKey", wrapped, privatePem, hybrid), big);
  jsFails(/wrapAlgo\.name must be one of/, "wrapKey", big, publicPem, { name: "ROT13" });
});

test("PEM <-> JWK conversions for EC, RSA and EdDSA keys", () => {
  const ec = generateKeyPairSync("ec", { namedCurve: "prime256v1" });
  const ecPublic = ec.publicKey.export({ type: "spki", format: "pem" }) as string;
  const ecPrivate = ec.privateKey.export({ type: "pkcs8", format: "pem" }) as string;
  const jwk = js("pubPemToJwk", ecPublic, "my-kid") as Record<string, string>;
  assert.equal(jwk.kty, "EC");
  assert.equal(jwk.crv, "P-256");
  assert.equal(jwk.kid, "my-kid");
  assert.equal(js("pubJwkToPem", jwk), ecPublic);
  const privateJwk = js("pemToJwk", ecPrivate) as Record<string, string>;
  assert.equal(typeof privateJwk.d, "string");
  assert.equal(js("jwkToPem", privateJwk), ecPrivate);

  const rsa = generateKeyPairSync("rsa", { modulusLength: 2048 });
  const rsaPublic = rsa.publicKey.export({ type: "spki", format: "pem" }) as string;
  const rsaJwk = js("pubRsaPemToJwk", rsaPublic) as Record<string, string>;
  assert.equal(rsaJwk.kty, "RSA");
  assert.equal(rsaJwk.e, "AQAB");
  assert.equal(js("pubRsaJwkToPem", rsaJwk), rsaPublic);
  const rsaPrivate = rsa.privateKey.export({ type: "pkcs8", format: "pem" }) as string;
  assert.equal(js("rsaJwkToPem", js("rsaPemToJwk", rsaPrivate)), rsaPrivate);

  const ed = generateKeyPairSync("ed25519");
  const edPublic = ed.publicKey.export({ type: "spki", format: "pem" }) as string;
  const edJwk = js("pubEddsaPemToJwk", edPublic) as Record<string, string>;
  assert.deepEqual([edJwk.kty, edJwk.crv], ["OKP", "Ed25519"]);
  assert.equal(js("pubEddsaJwkToPem", edJwk), edPublic);
  const edPrivate = ed.privateKey.export({ type: "pkcs8", format: "pem" }) as string;
  assert.equal(js("eddsaJwkToPem", js("eddsaPemToJwk", edPrivate)), edPrivate);

  jsFails(/must be a ec key/, "pubPemToJwk", rsaPublic);
  jsFails(/not a valid JWK/, "pubJwkToPem", { kty: "EC", crv: "P-256", x: "AA", y: "AA" });
});
