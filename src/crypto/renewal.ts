/**
 * Certificates that governance renews: a node's certificate endorsed afresh from its certificate
 * signing request, and the service certificate re-issued for its own key with a new validity.
 *
 * These run inside a proposal's apply (the constitution calls `ccf.network.*` and writes the
 * result to the KV in the same transaction), and QuickJS host functions are synchronous, so
 * unlike certs.ts nothing here goes through WebCrypto: certificates are assembled from their
 * ASN.1 structures and signed with node:crypto.
 */
import { createHash, createPublicKey, type KeyObject, sign, verify } from "node:crypto";
import type { CertificationRequest } from "@peculiar/asn1-csr";
import type { Certificate, Extension, SubjectPublicKeyInfo, TBSCertificate } from "@peculiar/asn1-x509";
import type * as X509 from "@peculiar/x509";
import {
  derToPem,
  importPrivate,
  importPublic,
  pemToDer,
  sanNames,
  serialHex,
  validityWindow,
} from "./certs.ts";
import { CryptoError, equalBytes } from "./hash.ts";
import { curveOf, hashForCurve, p384PrivateKey, type ServiceCurve } from "./keys.ts";
import { asn1, x509 as loadX509 } from "./lazy-x509.ts";

const ECDSA_WITH_SHA384 = "1.2.840.10045.4.3.3";
const ECDSA_WITH_SHA256 = "1.2.840.10045.4.3.2";

/** The signature algorithm OID of ECDSA with the hash of `curve` (as CCF: P-384 SHA-384, P-256 SHA-256). */
function ecdsaOid(curve: ServiceCurve): string {
  return curve === "secp384r1" ? ECDSA_WITH_SHA384 : ECDSA_WITH_SHA256;
}
const MAX_CSR_PEM_LENGTH = 64 * 1024;
const SAN_OID = "2.5.29.17";

function signed(tbs: TBSCertificate, key: KeyObject): string {
  const { AsnConvert } = asn1().schema;
  const { AlgorithmIdentifier, Certificate } = asn1().x509;
  const curve = curveOf(key);
  const signature = sign(hashForCurve(curve), Buffer.from(AsnConvert.serialize(tbs)), {
    key,
    dsaEncoding: "der",
  });
  const cert = new Certificate({
    tbsCertificate: tbs,
    signatureAlgorithm: new AlgorithmIdentifier({ algorithm: ecdsaOid(curve) }),
    signatureValue: new Uint8Array(signature).buffer,
  });
  return derToPem(new Uint8Array(AsnConvert.serialize(cert)));
}

function asn1Extension(ext: X509.Extension): Extension {
  const { AsnConvert } = asn1().schema;
  const { Extension } = asn1().x509;
  return AsnConvert.parse(ext.rawData, Extension);
}

/** RFC 5280's key identifier: SHA-1 of the subjectPublicKey bits. */
function keyId(spki: SubjectPublicKeyInfo): string {
  return createHash("sha1").update(new Uint8Array(spki.subjectPublicKey)).digest("hex");
}

/** The service's certificate and key, checked to belong together. */
function serviceSigner(service: { certPem: string; privateKeyPem: string }): {
  cert: Certificate;
  key: KeyObject;
} {
  const { AsnConvert } = asn1().schema;
  const { Certificate } = asn1().x509;
  let cert: Certificate;
  try {
    cert = AsnConvert.parse(pemToDer(service.certPem, "service certificate"), Certificate);
  } catch (err) {
    throw new CryptoError(`service certificate is not readable: ${(err as Error).message}`);
  }
  const key = p384PrivateKey(service.privateKeyPem);
  const certSpki = new Uint8Array(AsnConvert.serialize(cert.tbsCertificate.subjectPublicKeyInfo));
  const keySpki = new Uint8Array(createPublicKey(key).export({ type: "spki", format: "der" }));
  if (!equalBytes(certSpki, keySpki)) {
    throw new CryptoError("service private key does not match the service certificate");
  }
  return { cert, key };
}

/** The serial as a minimal DER INTEGER body: no leading zero bytes, one added if the top bit is set. */
export function serialBuffer(serial: Uint8Array): ArrayBuffer {
  serialHex(serial); // checks length and that it is not zero
  let start = 0;
  while (serial[start] === 0) start++;
  const magnitude = serial.subarray(start);
  const bytes = (magnitude[0] ?? 0) & 0x80 ? Uint8Array.of(0, ...magnitude) : Uint8Array.from(magnitude);
  return bytes.buffer;
}

/**
 * The start of a validity period as governance gives it (`valid_from`): an ASN.1 time string,
 * GeneralizedTime `YYYYMMDDhhmmssZ` or UTCTime `YYMMDDhhmmssZ`.
 */
export function parseValidFrom(text: string): Date {
  const m =
    /^(\d{4})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})Z$/.exec(text) ??
    /^(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})Z$/.exec(text);
  if (!m) {
    throw new CryptoError(`valid_from ${JSON.stringify(text)} is not an ASN.1 time such as 20261125000000Z`);
  }
  const [, y, mo, d, h, mi, s] = m.map(Number) as [number, number, number, number, number, number, number];
  const year = m[1]!.length === 2 ? (y >= 50 ? 1900 + y : 2000 + y) : y;
  const date = new Date(Date.UTC(year, mo - 1, d, h, mi, s));
  if (
    date.getUTCFullYear() !== year ||
    date.getUTCMonth() !== mo - 1 ||
    date.getUTCDate() !== d ||
    h > 23 ||
    mi > 59 ||
    s > 59
  ) {
    throw new CryptoError(`valid_from ${JSON.stringify(text)} is not a valid date and time`);
  }
  return date;
}

interface CheckedRequest {
  request: CertificationRequest;
  spki: SubjectPublicKeyInfo;
  publicKey: KeyObject;
  san: X509.Extension;
}

/** A PKCS#10 request for a P-384 or P-256 key, signed by that key, naming subject alternative names. */
function readCertificateRequest(csrPem: string): CheckedRequest {
  const { AsnConvert } = asn1().schema;
  const { CertificationRequest } = asn1().csr;
  const { SubjectPublicKeyInfo } = asn1().x509;
  const x509 = loadX509();
  if (typeof csrPem !== "string" || csrPem.length > MAX_CSR_PEM_LENGTH) {
    throw new CryptoError("certificate signing request must be a PEM string of at most 64 KiB");
  }
  let pkcs10: X509.Pkcs10CertificateRequest;
  try {
    pkcs10 = new x509.Pkcs10CertificateRequest(csrPem);
  } catch (err) {
    throw new CryptoError(`certificate signing request is not readable: ${(err as Error).message}`);
  }
  const spki = AsnConvert.parse(pkcs10.publicKey.rawData, SubjectPublicKeyInfo);
  const publicKey = createPublicKey({
    key: Buffer.from(pkcs10.publicKey.rawData),
    format: "der",
    type: "spki",
  });
  const namedCurve = publicKey.asymmetricKeyDetails?.namedCurve;
  if (publicKey.asymmetricKeyType !== "ec" || (namedCurve !== "secp384r1" && namedCurve !== "prime256v1")) {
    throw new CryptoError("certificate signing request must be for an ECDSA P-384 or P-256 key");
  }
  const curve = curveOf(publicKey);
  const request = AsnConvert.parse(pkcs10.rawData, CertificationRequest);
  const signatureOk =
    request.signatureAlgorithm.algorithm === ecdsaOid(curve) &&
    request.certificationRequestInfoRaw !== undefined &&
    verify(
      hashForCurve(curve),
      Buffer.from(request.certificationRequestInfoRaw),
      { key: publicKey, dsaEncoding: "der" },
      Buffer.from(request.signature),
    );
  if (!signatureOk) {
    throw new CryptoError(
      "certificate signing request is not signed (ECDSA P-384/SHA-384 or P-256/SHA-256) by its own key",
    );
  }
  const san = pkcs10.extensions.find((e) => e.type === SAN_OID);
  if (!san) throw new CryptoError("certificate signing request names no subject alternative names");
  return { request, spki, publicKey, san };
}

/** Keys of requests already checked: a Pending joiner sends the same request several times a second. */
const checkedRequestKeys = new Map<string, string>();
const MAX_CHECKED_REQUESTS = 64;

/** The public key (SPKI PEM) of a valid node certificate signing request; throws otherwise. */
export function certificateRequestKey(csrPem: string): string {
  const known = checkedRequestKeys.get(csrPem);
  if (known !== undefined) return known;
  const key = readCertificateRequest(csrPem).publicKey.export({ type: "spki", format: "pem" }).toString();
  if (checkedRequestKeys.size >= MAX_CHECKED_REQUESTS) {
    checkedRequestKeys.delete(checkedRequestKeys.keys().next().value!);
  }
  checkedRequestKeys.set(csrPem, key);
  return key;
}

/**
 * A node certificate endorsed by the service key for the key in `csrPem`, which must be a key on
 * the service's curve that signed the request. Subject and subject alternative names come from the request;
 * the certificate serves TLS as both server and client, like the one issued when a node joins.
 */
export function endorseCertificateRequest(opts: {
  service: { certPem: string; privateKeyPem: string };
  csrPem: string;
  validFrom: Date;
  validityDays: number;
  serial: Uint8Array;
}): string {
  const { AsnConvert } = asn1().schema;
  const { AlgorithmIdentifier, Extension, Extensions, TBSCertificate, Validity, Version } = asn1().x509;
  const x509 = loadX509();
  const { cert: service, key } = serviceSigner(opts.service);
  const { request, spki, san, publicKey } = readCertificateRequest(opts.csrPem);
  if (curveOf(publicKey) !== curveOf(key)) {
    throw new CryptoError("certificate signing request must be for a key on the service's curve");
  }
  const window = validityWindow(opts.validFrom, opts.validityDays);
  const { KeyUsageFlags: KU, ExtendedKeyUsage: EKU } = x509;
  const tbs = new TBSCertificate({
    version: Version.v3,
    serialNumber: serialBuffer(opts.serial),
    signature: new AlgorithmIdentifier({ algorithm: ecdsaOid(curveOf(key)) }),
    // Copied as encoded from the service certificate, so chain building links the two.
    issuer: service.tbsCertificate.subject,
    validity: new Validity(window),
    subject: request.certificationRequestInfo.subject,
    subjectPublicKeyInfo: spki,
    extensions: new Extensions([
      asn1Extension(new x509.BasicConstraintsExtension(false, undefined, true)),
      asn1Extension(new x509.KeyUsagesExtension(KU.digitalSignature, true)),
      asn1Extension(new x509.ExtendedKeyUsageExtension([EKU.serverAuth, EKU.clientAuth])),
      AsnConvert.parse(san.rawData, Extension),
      asn1Extension(new x509.SubjectKeyIdentifierExtension(keyId(spki))),
      asn1Extension(
        new x509.AuthorityKeyIdentifierExtension(keyId(service.tbsCertificate.subjectPublicKeyInfo)),
      ),
    ]),
  });
  return signed(tbs, key);
}

/**
 * The service certificate re-issued with a new validity period: same subject, same key, same
 * extensions, a new serial. Certificates the old one endorsed chain to it unchanged.
 */
export function renewServiceCertificate(opts: {
  service: { certPem: string; privateKeyPem: string };
  validFrom: Date;
  validityDays: number;
  serial: Uint8Array;
}): string {
  const { AlgorithmIdentifier, TBSCertificate, Validity } = asn1().x509;
  const { cert, key } = serviceSigner(opts.service);
  const old = cert.tbsCertificate;
  const tbs = new TBSCertificate({
    version: old.version,
    serialNumber: serialBuffer(opts.serial),
    signature: new AlgorithmIdentifier({ algorithm: ecdsaOid(curveOf(key)) }),
    issuer: old.subject,
    validity: new Validity(validityWindow(opts.validFrom, opts.validityDays)),
    subject: old.subject,
    subjectPublicKeyInfo: old.subjectPublicKeyInfo,
    ...(old.extensions ? { extensions: old.extensions } : {}),
  });
  return signed(tbs, key);
}

/**
 * A node's certificate signing request (PKCS#10, signed by its P-384 or P-256 key), recorded with the
 * node so that governance can renew its certificate later.
 */
export async function createCertificateRequest(opts: {
  privateKeyPem: string;
  altNames?: { ips?: string[]; dns?: string[] };
}): Promise<string> {
  const x509 = loadX509();
  const key = p384PrivateKey(opts.privateKeyPem);
  const request = await x509.Pkcs10CertificateRequestGenerator.create({
    name: [{ CN: ["Coco Node"] }],
    keys: { privateKey: await importPrivate(key), publicKey: await importPublic(createPublicKey(key)) },
    signingAlgorithm: { name: "ECDSA", hash: curveOf(key) === "secp384r1" ? "SHA-384" : "SHA-256" },
    extensions: [new x509.SubjectAlternativeNameExtension(sanNames(opts.altNames))],
  });
  return request.toString("pem");
}
