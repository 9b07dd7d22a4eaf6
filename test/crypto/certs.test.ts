import "reflect-metadata";
import assert from "node:assert/strict";
import {
  createPrivateKey,
  createPublicKey,
  generateKeyPairSync,
  webcrypto,
  X509Certificate,
} from "node:crypto";
import { test } from "node:test";
import * as x509 from "@peculiar/x509";
import {
  certFingerprint,
  createIdentityCertificate,
  createServiceIdentity,
  issueNodeCertificate,
  normalizePem,
  parseCertificate,
  verifyIssuedBy,
} from "../../src/crypto/certs.ts";
import { CryptoError, sha256, toHex } from "../../src/crypto/hash.ts";
import { generateP384KeyPair, nodeIdOf } from "../../src/crypto/keys.ts";
import { handshake } from "./handshake.ts";

// TLS checks validity against the real clock, so these certificates start now.
const now = new Date();
const serial = (n: number) => Uint8Array.of(0x10, n);

const service = await createServiceIdentity({ now, serial: serial(1) });
const otherService = await createServiceIdentity({ now, serial: serial(2) });
const nodeKey = generateP384KeyPair();
const nodeCert = await issueNodeCertificate({
  service,
  nodePublicKeyPem: nodeKey.publicKeyPem,
  now,
  serial: serial(3),
});
const member = await createIdentityCertificate({ name: "member0", now, serial: serial(4) });

const nodeServer = { key: nodeKey.privateKeyPem, cert: nodeCert };

test("the node certificate verifies against the service certificate and no other", () => {
  const cert = new X509Certificate(nodeCert);
  assert.equal(cert.verify(new X509Certificate(service.certPem).publicKey), true);
  assert.equal(cert.verify(new X509Certificate(otherService.certPem).publicKey), false);
  assert.equal(cert.checkIssued(new X509Certificate(service.certPem)), true);
  assert.deepEqual(verifyIssuedBy(nodeCert, service.certPem, now), { ok: true });
  const other = verifyIssuedBy(nodeCert, otherService.certPem, now);
  assert.equal(other.ok, false);
  assert.match(other.ok ? "" : other.reason, /signature does not verify/);
});

test("a TLS client pinning the service certificate connects to the node on 127.0.0.1", async () => {
  const ok = await handshake(nodeServer, { ca: service.certPem });
  assert.equal(ok.error, undefined);
  const viaDns = await handshake(nodeServer, { ca: service.certPem, servername: "localhost" });
  assert.equal(viaDns.error, undefined);
});

test("TLS fails when the client pins another service, or asks for a name not in the certificate", async () => {
  const wrongCa = await handshake(nodeServer, { ca: otherService.certPem });
  assert.equal(wrongCa.error?.code, "UNABLE_TO_VERIFY_LEAF_SIGNATURE");
  const wrongName = await handshake(nodeServer, { ca: service.certPem, servername: "coco.example" });
  assert.equal(wrongName.error?.code, "ERR_TLS_CERT_ALTNAME_INVALID");
});

test("nodes authenticate each other with mutual TLS under the service certificate", async () => {
  const peerKey = generateP384KeyPair();
  const peerCert = await issueNodeCertificate({
    service,
    nodePublicKeyPem: peerKey.publicKeyPem,
    now,
    serial: serial(5),
  });
  const mtlsServer = { ...nodeServer, requestCert: true, rejectUnauthorized: true, ca: service.certPem };
  const ok = await handshake(mtlsServer, { ca: service.certPem, key: peerKey.privateKeyPem, cert: peerCert });
  assert.equal(ok.error, undefined);
  assert.equal(ok.serverAuthorized, true);
  assert.equal(
    nodeIdOf(new X509Certificate(ok.peerDer ?? new Uint8Array()).toString()),
    nodeIdOf(peerKey.publicKeyPem),
  );
  // A member's self-signed certificate is not a node's.
  const refused = await handshake(mtlsServer, {
    ca: service.certPem,
    key: member.privateKeyPem,
    cert: member.certPem,
  });
  assert.notEqual(refused.error, undefined);
});

test("a member's client certificate reaches the server, which identifies it by fingerprint", async () => {
  const out = await handshake(
    { ...nodeServer, requestCert: true, rejectUnauthorized: false },
    { ca: service.certPem, key: member.privateKeyPem, cert: member.certPem },
  );
  assert.equal(out.error, undefined);
  assert.ok(out.peerDer);
  assert.equal(certFingerprint(out.peerDer), certFingerprint(member.certPem));
});

test("service certificate: self-signed P-384 CA for certificate signing", () => {
  const info = parseCertificate(service.certPem);
  assert.equal(info.subject, "CN=Coco Service");
  assert.equal(info.issuer, "CN=Coco Service");
  assert.equal(info.isCA, true);
  assert.equal(info.keyType, "P-384");
  assert.equal(info.serialNumber, "1001");
  assert.equal(info.notBefore.getTime(), Math.floor(now.getTime() / 1000) * 1000);
  assert.equal(info.notAfter.getTime() - info.notBefore.getTime(), 365 * 86_400_000);
  const usage = new x509.X509Certificate(service.certPem).getExtension(x509.KeyUsagesExtension);
  assert.ok(usage && usage.usages & x509.KeyUsageFlags.keyCertSign);
  assert.deepEqual(verifyIssuedBy(service.certPem, service.certPem, now), { ok: true });
  // The private key returned is the certificate's key.
  const spki = createPublicKey(createPrivateKey(service.privateKeyPem)).export({
    type: "spki",
    format: "pem",
  });
  assert.equal(info.publicKeyPem, spki);
});

test("node certificate: leaf for the node's key with server+client usage and default SANs", async () => {
  const info = parseCertificate(nodeCert);
  const cert = new X509Certificate(nodeCert);
  assert.equal(info.issuer, "CN=Coco Service");
  assert.equal(info.isCA, false);
  assert.equal(nodeIdOf(info.publicKeyPem), nodeIdOf(nodeKey.publicKeyPem));
  assert.equal(cert.subjectAltName, "IP Address:127.0.0.1, DNS:localhost");
  assert.deepEqual([...(cert.keyUsage ?? [])].sort(), ["1.3.6.1.5.5.7.3.1", "1.3.6.1.5.5.7.3.2"]);
  const custom = await issueNodeCertificate({
    service,
    nodePublicKeyPem: nodeKey.publicKeyPem,
    subjectName: "node-1",
    altNames: { ips: ["10.1.2.3", "::1"], dns: ["n1.coco.test"] },
    validityDays: 7,
    now,
    serial: serial(6),
  });
  const customCert = new X509Certificate(custom);
  assert.equal(
    customCert.subjectAltName,
    "IP Address:10.1.2.3, IP Address:0:0:0:0:0:0:0:1, DNS:n1.coco.test",
  );
  assert.equal(parseCertificate(custom).subject, "CN=node-1");
});

test("issuing refuses mismatched or wrong-kind keys and bad parameters", async () => {
  const base = { service, nodePublicKeyPem: nodeKey.publicKeyPem, now, serial: serial(7) };
  await assert.rejects(
    issueNodeCertificate({
      ...base,
      service: { certPem: service.certPem, privateKeyPem: otherService.privateKeyPem },
    }),
    /does not match the service certificate/,
  );
  const p256 = generateKeyPairSync("ec", { namedCurve: "prime256v1" });
  const p256Pem = p256.publicKey.export({ type: "spki", format: "pem" }).toString();
  await assert.rejects(
    issueNodeCertificate({ ...base, nodePublicKeyPem: p256Pem }),
    /on the service's curve/,
  );
  await assert.rejects(issueNodeCertificate({ ...base, nodePublicKeyPem: "junk" }), CryptoError);
  await assert.rejects(
    issueNodeCertificate({
      ...base,
      service: { certPem: member.certPem, privateKeyPem: member.privateKeyPem },
    }),
    /P-384 or P-256 CA/,
  );
  await assert.rejects(issueNodeCertificate({ ...base, altNames: { ips: ["300.1.1.1"] } }), /not an IP/);
  await assert.rejects(issueNodeCertificate({ ...base, altNames: { dns: ["bad host"] } }), /not a DNS name/);
  await assert.rejects(issueNodeCertificate({ ...base, altNames: {} }), /at least one/);
  await assert.rejects(issueNodeCertificate({ ...base, serial: new Uint8Array(3) }), /must not be zero/);
  await assert.rejects(
    issueNodeCertificate({ ...base, serial: new Uint8Array(20).fill(1) }),
    /1 to 19 bytes/,
  );
  await assert.rejects(issueNodeCertificate({ ...base, validityDays: 0 }), /validityDays/);
  await assert.rejects(issueNodeCertificate({ ...base, now: new Date(Number.NaN) }), /valid Date/);
});

test("member certificate: self-signed, CN=<name>, client auth only, non-ASCII names kept", async () => {
  const info = parseCertificate(member.certPem);
  assert.equal(info.subject, "CN=member0");
  assert.equal(info.isCA, false);
  assert.deepEqual(new X509Certificate(member.certPem).keyUsage, ["1.3.6.1.5.5.7.3.2"]);
  assert.deepEqual(verifyIssuedBy(member.certPem, member.certPem, now), { ok: true });
  const odd = await createIdentityCertificate({ name: "zoë_user@example", now, serial: serial(8) });
  assert.equal(parseCertificate(odd.certPem).subject, "CN=zoë_user@example");
  await assert.rejects(createIdentityCertificate({ name: "", now, serial: serial(9) }), /1 to 64/);
});

test("the member id is the SHA-256 of the DER, as openssl's -sha256 fingerprint, in any encoding", () => {
  const id = certFingerprint(member.certPem);
  assert.match(id, /^[0-9a-f]{64}$/);
  const openssl = new X509Certificate(member.certPem).fingerprint256.replaceAll(":", "").toLowerCase();
  assert.equal(id, openssl);
  const der = parseCertificate(member.certPem).der;
  assert.equal(id, toHex(sha256(der)));
  assert.equal(certFingerprint(der), id);
  const messy = `Bag Attributes: friendlyName\r\n${member.certPem.replaceAll("\n", "\r\n")}\r\n\r\n`;
  assert.equal(certFingerprint(messy), id);
  assert.notEqual(certFingerprint(service.certPem), id);
});

test("normalizePem gives one canonical text for any encoding of the same certificate", () => {
  const der = parseCertificate(nodeCert).der;
  const b64 = Buffer.from(der).toString("base64");
  const wide = `-----BEGIN CERTIFICATE-----\r\n${b64.match(/.{1,76}/g)?.join("\r\n")}\r\n-----END CERTIFICATE-----`;
  const canonical = normalizePem(wide);
  assert.equal(canonical, normalizePem(nodeCert));
  assert.equal(normalizePem(canonical), canonical);
  assert.match(
    canonical,
    /^-----BEGIN CERTIFICATE-----\n([A-Za-z0-9+/=]{1,64}\n)+-----END CERTIFICATE-----\n$/,
  );
  assert.ok(
    canonical
      .split("\n")
      .slice(1, -3)
      .every((line) => line.length === 64),
  );
});

test("parseCertificate refuses garbage, several certificates and stray blocks with clear errors", () => {
  const der = parseCertificate(member.certPem).der;
  const wrap = (bytes: Uint8Array) =>
    `-----BEGIN CERTIFICATE-----\n${Buffer.from(bytes).toString("base64")}\n-----END CERTIFICATE-----\n`;
  const cases: [string, RegExp][] = [
    ["", /no -----BEGIN CERTIFICATE----- block/],
    ["hello", /no -----BEGIN CERTIFICATE----- block/],
    [member.certPem + service.certPem, /exactly one certificate, found 2/],
    [member.certPem + member.privateKeyPem, /contains a PRIVATE KEY block/],
    [nodeKey.publicKeyPem, /contains a PUBLIC KEY block/],
    ["-----BEGIN CERTIFICATE-----\nMIIB*\n-----END CERTIFICATE-----\n", /not valid base64/],
    ["-----BEGIN CERTIFICATE-----\nMIIB\n", /never ended/],
    [wrap(der.subarray(0, der.length - 10)), /not a single DER certificate/],
    [wrap(Uint8Array.from([...der, 0])), /trailing bytes/],
    [wrap(Uint8Array.of(0x30, 0x03, 0x02, 0x01, 0x05)), /not a valid X.509 certificate/],
  ];
  for (const [pem, message] of cases) {
    assert.throws(
      () => parseCertificate(pem),
      (e: unknown) => e instanceof CryptoError && message.test(e.message),
      pem,
    );
  }
  assert.throws(() => certFingerprint(Uint8Array.of(1, 2, 3)), CryptoError);
});

async function foreignCert(
  algorithm: webcrypto.RsaHashedKeyGenParams | webcrypto.EcKeyGenParams,
): Promise<string> {
  const keys = (await webcrypto.subtle.generateKey(algorithm, false, [
    "sign",
    "verify",
  ])) as webcrypto.CryptoKeyPair;
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: "01",
    name: "CN=foreign",
    notBefore: now,
    notAfter: new Date(now.getTime() + 86_400_000),
    keys,
    signingAlgorithm: { name: algorithm.name, hash: "SHA-256" },
  });
  return cert.toString("pem");
}

test("members may bring P-256 or RSA-2048 certificates; weaker or other keys are refused", async () => {
  const rsa = (modulusLength: number) => ({
    name: "RSASSA-PKCS1-v1_5",
    modulusLength,
    publicExponent: Uint8Array.of(1, 0, 1),
    hash: "SHA-256",
  });
  assert.equal(parseCertificate(await foreignCert({ name: "ECDSA", namedCurve: "P-256" })).keyType, "P-256");
  const rsaPem = await foreignCert(rsa(2048));
  assert.equal(parseCertificate(rsaPem).keyType, "RSA");
  assert.match(certFingerprint(rsaPem), /^[0-9a-f]{64}$/);
  const rsa1024 = await foreignCert(rsa(1024));
  assert.throws(() => parseCertificate(rsa1024), /1024-bit RSA key; at least 2048/);
  const p521 = await foreignCert({ name: "ECDSA", namedCurve: "P-521" });
  assert.throws(() => parseCertificate(p521), /EC key on secp521r1/);
});
