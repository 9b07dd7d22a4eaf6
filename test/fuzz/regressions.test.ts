import assert from "node:assert/strict";
import { X509Certificate } from "node:crypto";
import { test } from "node:test";
import { SnpError } from "../../src/tee/index.ts";
import { loadCert } from "../../src/tee/snp/certs.ts";
import { makeFakeChain } from "../tee/fake-amd.ts";

/** Crashes the fuzzers found, each kept as a test of its own once fixed (docs/testing.md lists them). */

test("an SNP certificate that parses but whose public key does not is a clear SnpError (fuzz: snp-chain)", async () => {
  const chain = await makeFakeChain();
  const der = Buffer.from(chain.askCert.rawData);
  const x = new X509Certificate(der);
  // Break the RSA key inside the SubjectPublicKeyInfo: the INTEGER tag before the modulus.
  const modulus = Buffer.from(x.publicKey.export({ format: "jwk" }).n!, "base64url");
  const at = der.indexOf(modulus);
  assert.ok(at > 0);
  const tag = der.lastIndexOf(0x02, at);
  assert.ok(at - tag <= 5, "the modulus INTEGER header is right before it");
  der[tag] = 0x05;
  // Node still reads the certificate; only its key is unreadable (it is parsed lazily).
  const broken = new X509Certificate(der);
  assert.throws(() => broken.publicKey);
  assert.throws(
    () => loadCert(new Uint8Array(der), "ASK"),
    (e: unknown) => e instanceof SnpError && /ASK is not a readable X.509 certificate/.test(e.message),
  );
});
