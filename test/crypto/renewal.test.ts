import "reflect-metadata";
import assert from "node:assert/strict";
import { X509Certificate } from "node:crypto";
import { test } from "node:test";
import * as x509 from "@peculiar/x509";
import { createServiceIdentity, issueNodeCertificate, verifyIssuedBy } from "../../src/crypto/certs.ts";
import { CryptoError } from "../../src/crypto/hash.ts";
import { generateP384KeyPair } from "../../src/crypto/keys.ts";
import {
  createCertificateRequest,
  endorseCertificateRequest,
  parseValidFrom,
  renewServiceCertificate,
  serialBuffer,
} from "../../src/crypto/renewal.ts";
import { handshake } from "./handshake.ts";

// TLS checks validity against the real clock, so these certificates start now.
const now = new Date();
const serial = (n: number) => Uint8Array.of(0x20, n);
const DAY_MS = 86_400_000;

const service = await createServiceIdentity({ now, serial: serial(1) });
const nodeKey = generateP384KeyPair();
const csrPem = await createCertificateRequest({
  privateKeyPem: nodeKey.privateKeyPem,
  altNames: { ips: ["127.0.0.1", "10.0.0.7"], dns: ["localhost"] },
});
const start = new Date(Math.floor(now.getTime() / 1000) * 1000);

test("parseValidFrom reads GeneralizedTime and UTCTime and refuses anything else", () => {
  assert.equal(parseValidFrom("20261125093000Z").toISOString(), "2026-11-25T09:30:00.000Z");
  assert.equal(parseValidFrom("261125093000Z").toISOString(), "2026-11-25T09:30:00.000Z");
  assert.equal(parseValidFrom("991231235959Z").toISOString(), "1999-12-31T23:59:59.000Z");
  for (const bad of [
    "2026-11-25",
    "20261325000000Z",
    "20260230000000Z",
    "20261125250000Z",
    "20261125000000",
    "",
  ]) {
    assert.throws(() => parseValidFrom(bad), CryptoError, bad);
  }
});

test("a node's request is endorsed by the service for its own key, names and the asked validity", async () => {
  const pem = endorseCertificateRequest({
    service,
    csrPem,
    validFrom: start,
    validityDays: 30,
    serial: serial(2),
  });
  const cert = new X509Certificate(pem);
  assert.equal(new Date(cert.validFrom).getTime(), start.getTime());
  assert.equal(new Date(cert.validTo).getTime(), start.getTime() + 30 * DAY_MS);
  assert.equal(cert.subject, "CN=Coco Node");
  assert.match(cert.subjectAltName ?? "", /IP Address:10\.0\.0\.7/);
  assert.match(cert.subjectAltName ?? "", /DNS:localhost/);
  assert.deepEqual(verifyIssuedBy(pem, service.certPem, now), { ok: true });
  assert.ok(cert.publicKey.equals(new X509Certificate(await issued()).publicKey), "the node's own key");

  // It serves mutual TLS like the certificate issued at join.
  const outcome = await handshake(
    { key: nodeKey.privateKeyPem, cert: pem, ca: service.certPem, requestCert: true },
    { key: nodeKey.privateKeyPem, cert: pem, ca: service.certPem, servername: "localhost" },
  );
  assert.equal(outcome.error, undefined);
  assert.equal(outcome.serverAuthorized, true);
});

async function issued(): Promise<string> {
  return issueNodeCertificate({ service, nodePublicKeyPem: nodeKey.publicKeyPem, now, serial: serial(3) });
}

test("a request that is tampered with, for another curve, or not a request is refused", async () => {
  const endorse = (pem: string) =>
    endorseCertificateRequest({
      service,
      csrPem: pem,
      validFrom: start,
      validityDays: 30,
      serial: serial(4),
    });
  // Re-encode the request with another key's public key: the signature no longer matches.
  const other = generateP384KeyPair();
  const otherCsr = await createCertificateRequest({ privateKeyPem: other.privateKeyPem });
  const der = Buffer.from(new x509.Pkcs10CertificateRequest(csrPem).rawData);
  const otherSpki = Buffer.from(new x509.Pkcs10CertificateRequest(otherCsr).publicKey.rawData);
  const ownSpki = Buffer.from(new x509.Pkcs10CertificateRequest(csrPem).publicKey.rawData);
  const swapped = Buffer.from(der);
  swapped.set(otherSpki, der.indexOf(ownSpki));
  const swappedPem = new x509.Pkcs10CertificateRequest(new Uint8Array(swapped)).toString("pem");
  assert.throws(() => endorse(swappedPem), /not signed .* by its own key/);

  const p256 = await x509.Pkcs10CertificateRequestGenerator.create({
    name: "CN=Coco Node",
    keys: await crypto.subtle.generateKey({ name: "ECDSA", namedCurve: "P-256" }, true, ["sign", "verify"]),
    signingAlgorithm: { name: "ECDSA", hash: "SHA-256" },
    extensions: [new x509.SubjectAlternativeNameExtension([{ type: "ip", value: "127.0.0.1" }])],
  });
  // A P-256 request is well formed, but this service is on P-384: its nodes must be too.
  assert.throws(() => endorse(p256.toString("pem")), /service's curve/);
  assert.throws(() => endorse(service.certPem), /not readable/);
  assert.throws(() => endorse("x".repeat(70_000)), /at most 64 KiB/);
  assert.throws(
    () =>
      endorseCertificateRequest({
        service: { certPem: service.certPem, privateKeyPem: other.privateKeyPem },
        csrPem,
        validFrom: start,
        validityDays: 30,
        serial: serial(5),
      }),
    /does not match the service certificate/,
  );
  assert.throws(
    () =>
      endorseCertificateRequest({ service, csrPem, validFrom: start, validityDays: 0, serial: serial(6) }),
    /validityDays/,
  );
});

test("the renewed service certificate keeps subject, key and extensions, and still endorses old node certificates", async () => {
  const renewed = renewServiceCertificate({ service, validFrom: start, validityDays: 10, serial: serial(7) });
  const before = new X509Certificate(service.certPem);
  const after = new X509Certificate(renewed);
  assert.equal(after.subject, before.subject);
  assert.ok(after.publicKey.equals(before.publicKey));
  assert.equal(after.ca, true);
  assert.notEqual(after.serialNumber, before.serialNumber);
  assert.equal(new Date(after.validTo).getTime(), start.getTime() + 10 * DAY_MS);
  assert.deepEqual(verifyIssuedBy(renewed, renewed, now), { ok: true }, "self-signed");
  const nodeCert = await issued();
  assert.deepEqual(verifyIssuedBy(nodeCert, renewed, now), { ok: true });
  const outcome = await handshake(
    { key: nodeKey.privateKeyPem, cert: nodeCert },
    { ca: renewed, servername: "localhost" },
  );
  assert.equal(outcome.error, undefined, "a client pinning the renewed certificate trusts the node");
});

test("serials are minimal positive DER integers, and certificates with any of them parse", () => {
  const hex = (b: ArrayBuffer) => Buffer.from(b).toString("hex");
  assert.equal(hex(serialBuffer(Uint8Array.of(0, 0, 0x12, 0x34))), "1234");
  assert.equal(hex(serialBuffer(Uint8Array.of(0, 0x92))), "0092");
  assert.equal(hex(serialBuffer(Uint8Array.of(0x92, 1))), "009201");
  assert.throws(() => serialBuffer(new Uint8Array(3)), CryptoError);
  for (const serial of [Uint8Array.of(0, 0x12, 0x34), Uint8Array.of(0, 0x92), Uint8Array.of(0xff, 0xff)]) {
    const pem = renewServiceCertificate({ service, validFrom: start, validityDays: 1, serial });
    assert.equal(
      new X509Certificate(pem).serialNumber.replace(/^0+/, ""),
      hex(serialBuffer(serial)).replace(/^0+/, "").toUpperCase(),
    );
  }
});
