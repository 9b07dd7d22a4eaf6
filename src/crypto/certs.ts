import { createPrivateKey, createPublicKey, type KeyObject, webcrypto, X509Certificate } from "node:crypto";
import { isIP } from "node:net";
import type * as X509 from "@peculiar/x509";
import { CryptoError, equalBytes, sha256, toHex } from "./hash.ts";
import { curveOf, generateEcKeyPair, p384PrivateKey, type ServiceCurve } from "./keys.ts";
import { x509 as loadX509 } from "./lazy-x509.ts";

const DEFAULT_VALIDITY_DAYS = 365;
const MAX_VALIDITY_DAYS = 36_500;
const MAX_PEM_LENGTH = 1 << 20;
const DAY_MS = 86_400_000;
/** WebCrypto's name of a curve. */
function ecParams(curve: ServiceCurve) {
  return { name: "ECDSA", namedCurve: curve === "secp384r1" ? "P-384" : "P-256" } as const;
}
/** The signature algorithm of certificates issued by a key on `curve` (ECDSA with its hash). */
function signingAlgorithm(curve: ServiceCurve) {
  return { name: "ECDSA", hash: curve === "secp384r1" ? "SHA-384" : "SHA-256" } as const;
}

/** Public key types accepted in certificates. Coco's own keys are P-384, or P-256 if chosen. */
export type CertKeyType = "P-384" | "P-256" | "RSA";

/** What Coco reads from a certificate. */
export interface CertificateInfo {
  der: Uint8Array;
  /** Distinguished names in RFC 4514 form, e.g. "CN=Coco Service". */
  subject: string;
  issuer: string;
  notBefore: Date;
  notAfter: Date;
  /** SPKI PEM of the certified key. */
  publicKeyPem: string;
  /** basicConstraints CA:TRUE. */
  isCA: boolean;
  keyType: CertKeyType;
  /** Serial number, lowercase hex without a sign byte. */
  serialNumber: string;
}

// ---------------------------------------------------------------- PEM

const BOUNDARY = /-----(BEGIN|END) ([A-Z0-9 ]*)-----/g;
const BASE64_BODY = /^[A-Za-z0-9+/]*={0,2}$/;

/**
 * The DER inside the one CERTIFICATE block of `pem`. Explanatory text outside the block is
 * tolerated (RFC 7468 allows it), but any other PEM block (a second certificate, a private key)
 * is refused: a file meant to name one identity must not carry two.
 */
export function pemToDer(pem: string, what: string): Uint8Array {
  if (typeof pem !== "string") throw new CryptoError(`${what} must be a PEM string, got ${typeof pem}`);
  if (pem.length > MAX_PEM_LENGTH) {
    throw new CryptoError(`${what} is ${pem.length} characters, more than the ${MAX_PEM_LENGTH} allowed`);
  }
  const bodies: string[] = [];
  let open: { label: string; start: number } | undefined;
  for (const match of pem.matchAll(BOUNDARY)) {
    const [text, kind, label = ""] = match;
    if (kind === "BEGIN") {
      if (open) throw new CryptoError(`${what}: BEGIN ${label} inside an unterminated BEGIN ${open.label}`);
      if (label !== "CERTIFICATE") {
        throw new CryptoError(`${what} contains a ${label} block; only one CERTIFICATE block is allowed`);
      }
      open = { label, start: match.index + text.length };
    } else {
      if (!open || open.label !== label)
        throw new CryptoError(`${what}: END ${label} without matching BEGIN`);
      bodies.push(pem.slice(open.start, match.index));
      open = undefined;
    }
  }
  if (open) throw new CryptoError(`${what}: BEGIN ${open.label} is never ended`);
  if (bodies.length !== 1) {
    throw new CryptoError(
      bodies.length === 0
        ? `${what} has no -----BEGIN CERTIFICATE----- block`
        : `${what} must hold exactly one certificate, found ${bodies.length}`,
    );
  }
  const body = (bodies[0] ?? "").replace(/\s+/g, "");
  if (body.length === 0 || body.length % 4 !== 0 || !BASE64_BODY.test(body)) {
    throw new CryptoError(`${what}: the certificate block is not valid base64`);
  }
  const der = Buffer.from(body, "base64");
  // Re-encoding catches stray padding bits, so one DER has exactly one accepted PEM.
  if (der.toString("base64") !== body) {
    throw new CryptoError(`${what}: the certificate block is not canonical base64`);
  }
  return new Uint8Array(der);
}

export function derToPem(der: Uint8Array): string {
  const b64 = Buffer.from(der).toString("base64");
  const lines = b64.match(/.{1,64}/g) ?? [];
  return `-----BEGIN CERTIFICATE-----\n${lines.join("\n")}\n-----END CERTIFICATE-----\n`;
}

/** Length of the outer DER TLV, so trailing bytes after a certificate can be refused. */
function derOuterLength(der: Uint8Array): number | undefined {
  if (der.length < 2 || der[0] !== 0x30) return undefined;
  const first = der[1] ?? 0;
  if (first < 0x80) return 2 + first;
  const count = first & 0x7f;
  if (count === 0 || count > 4 || der.length < 2 + count) return undefined;
  let length = 0;
  for (let i = 0; i < count; i++) length = length * 256 + (der[2 + i] ?? 0);
  return 2 + count + length;
}

// ---------------------------------------------------------------- parsing

interface ParsedCert {
  info: CertificateInfo;
  native: X509Certificate;
  peculiar: X509.X509Certificate;
}

function keyTypeOf(key: KeyObject, what: string): CertKeyType {
  const details = key.asymmetricKeyDetails ?? {};
  if (key.asymmetricKeyType === "ec") {
    if (details.namedCurve === "secp384r1") return "P-384";
    if (details.namedCurve === "prime256v1") return "P-256";
    throw new CryptoError(
      `${what} has an EC key on ${details.namedCurve}; only P-384 and P-256 are accepted`,
    );
  }
  if (key.asymmetricKeyType === "rsa") {
    const bits = details.modulusLength ?? 0;
    if (bits < 2048)
      throw new CryptoError(`${what} has a ${bits}-bit RSA key; at least 2048 bits are required`);
    return "RSA";
  }
  throw new CryptoError(
    `${what} has a ${key.asymmetricKeyType} key; only EC P-384, EC P-256 and RSA are accepted`,
  );
}

/** The checks every accepted certificate passes: one DER certificate, with a key type Coco accepts. */
function parseNative(der: Uint8Array, what: string): { native: X509Certificate; keyType: CertKeyType } {
  if (derOuterLength(der) !== der.length) {
    throw new CryptoError(`${what} is not a single DER certificate (bad outer length or trailing bytes)`);
  }
  let native: X509Certificate;
  try {
    native = new X509Certificate(der);
  } catch (err) {
    throw new CryptoError(`${what} is not a valid X.509 certificate: ${(err as Error).message}`);
  }
  return { native, keyType: keyTypeOf(native.publicKey, what) };
}

function parseDer(der: Uint8Array, what: string): ParsedCert {
  const { native, keyType } = parseNative(der, what);
  const x509 = loadX509();
  let peculiar: X509.X509Certificate;
  try {
    peculiar = new x509.X509Certificate(der);
  } catch (err) {
    throw new CryptoError(`${what} is not a valid X.509 certificate: ${(err as Error).message}`);
  }
  const basic = peculiar.getExtension(x509.BasicConstraintsExtension);
  return {
    native,
    peculiar,
    info: {
      der,
      subject: peculiar.subject,
      issuer: peculiar.issuer,
      notBefore: peculiar.notBefore,
      notAfter: peculiar.notAfter,
      publicKeyPem: native.publicKey.export({ type: "spki", format: "pem" }).toString(),
      isCA: basic?.ca === true,
      keyType,
      serialNumber: peculiar.serialNumber.toLowerCase(),
    },
  };
}

function parsePem(pem: string, what: string): ParsedCert {
  return parseDer(pemToDer(pem, what), what);
}

/**
 * Reads one PEM certificate. Accepts EC P-384 and P-256 keys and RSA keys of 2048 bits or more
 * (members and users may bring certificates made by other tools; Coco's own are P-384).
 * Throws CryptoError for anything else: garbage, several certificates, other key types.
 */
export function parseCertificate(pem: string): CertificateInfo {
  return parsePem(pem, "certificate").info;
}

/** The one certificate in `pem`, re-encoded canonically: 64-column base64, LF, final newline. */
export function normalizePem(pem: string): string {
  const der = pemToDer(pem, "certificate");
  parseNative(der, "certificate");
  return derToPem(der);
}

/** Hex SHA-256 of the certificate's DER: a member's or user's id (same as openssl's -sha256 fingerprint). */
export function certFingerprint(certPemOrDer: string | Uint8Array): string {
  // node:crypto's checks only: a `coco gov` call fingerprints its member certificate and should
  // not load the X.509 building libraries for it.
  const der = typeof certPemOrDer === "string" ? pemToDer(certPemOrDer, "certificate") : certPemOrDer;
  parseNative(der, "certificate");
  return toHex(sha256(der));
}

function spkiDer(key: KeyObject): Uint8Array {
  return new Uint8Array(key.export({ type: "spki", format: "der" }));
}

/**
 * Whether `certPem` was signed by the key of `issuerCertPem` under the issuer's name. An issuer
 * other than the certificate itself must be a CA allowed to sign certificates. With `at`, both
 * validity windows must contain it; without, times are not checked (core code has no clock).
 * Never throws: unreadable input is a failure with a reason.
 */
export function verifyIssuedBy(
  certPem: string,
  issuerCertPem: string,
  at?: Date,
): { ok: true } | { ok: false; reason: string } {
  const x509 = loadX509();
  let cert: ParsedCert;
  let issuer: ParsedCert;
  try {
    cert = parsePem(certPem, "certificate");
    issuer = parsePem(issuerCertPem, "issuer certificate");
  } catch (err) {
    return { ok: false, reason: (err as Error).message };
  }
  const issuerName = new Uint8Array(issuer.peculiar.subjectName.toArrayBuffer());
  const claimedIssuer = new Uint8Array(cert.peculiar.issuerName.toArrayBuffer());
  if (!equalBytes(issuerName, claimedIssuer)) {
    return {
      ok: false,
      reason: `certificate names issuer "${cert.info.issuer}", not "${issuer.info.subject}"`,
    };
  }
  if (!equalBytes(cert.info.der, issuer.info.der)) {
    if (!issuer.info.isCA) return { ok: false, reason: `issuer "${issuer.info.subject}" is not a CA` };
    const usage = issuer.peculiar.getExtension(x509.KeyUsagesExtension);
    if (usage && (usage.usages & x509.KeyUsageFlags.keyCertSign) === 0) {
      return { ok: false, reason: `issuer "${issuer.info.subject}" may not sign certificates (keyUsage)` };
    }
  }
  let signed = false;
  try {
    signed = cert.native.verify(issuer.native.publicKey);
  } catch {
    signed = false;
  }
  if (!signed) return { ok: false, reason: "certificate signature does not verify with the issuer's key" };
  if (at !== undefined) {
    if (!(at instanceof Date) || Number.isNaN(at.getTime()))
      return { ok: false, reason: "invalid check time" };
    for (const [label, c] of [
      ["certificate", cert.info],
      ["issuer certificate", issuer.info],
    ] as const) {
      if (at < c.notBefore) {
        return { ok: false, reason: `${label} is not valid before ${c.notBefore.toISOString()}` };
      }
      if (at > c.notAfter) {
        return { ok: false, reason: `${label} expired at ${c.notAfter.toISOString()}` };
      }
    }
  }
  return { ok: true };
}

// ---------------------------------------------------------------- building

interface Window {
  notBefore: Date;
  notAfter: Date;
}

export function validityWindow(now: Date, validityDays: number | undefined): Window {
  if (!(now instanceof Date) || Number.isNaN(now.getTime())) {
    throw new CryptoError("certificate start time `now` must be a valid Date");
  }
  const days = validityDays ?? DEFAULT_VALIDITY_DAYS;
  if (!Number.isInteger(days) || days < 1 || days > MAX_VALIDITY_DAYS) {
    throw new CryptoError(`validityDays must be an integer from 1 to ${MAX_VALIDITY_DAYS}, got ${days}`);
  }
  // X.509 times have whole seconds; round down so the certificate is valid at `now` itself.
  const start = Math.floor(now.getTime() / 1000) * 1000;
  return { notBefore: new Date(start), notAfter: new Date(start + days * DAY_MS) };
}

/**
 * The serial as hex. Callers give the bytes (from their injected randomness) so building stays
 * deterministic: an all-zero serial would make the library pick a random one. At most 19 bytes,
 * because a 20-byte serial with its top bit set needs a sign byte and RFC 5280 caps it at 20.
 */
export function serialHex(serial: Uint8Array): string {
  if (!(serial instanceof Uint8Array) || serial.length < 1 || serial.length > 19) {
    throw new CryptoError("certificate serial must be 1 to 19 bytes");
  }
  if (serial.every((b) => b === 0)) throw new CryptoError("certificate serial must not be zero");
  return toHex(serial);
}

function commonName(name: string | undefined, fallback: string, what: string): X509.JsonName {
  const cn = name ?? fallback;
  if (typeof cn !== "string" || cn.length === 0 || cn.length > 64) {
    throw new CryptoError(`${what} must be 1 to 64 characters (X.509 CN limit)`);
  }
  return [{ CN: [cn] }];
}

export async function importPrivate(key: KeyObject): Promise<webcrypto.CryptoKey> {
  const der = key.export({ type: "pkcs8", format: "der" });
  return await webcrypto.subtle.importKey("pkcs8", der, ecParams(curveOf(key)), false, ["sign"]);
}

export async function importPublic(key: KeyObject): Promise<webcrypto.CryptoKey> {
  const der = key.export({ type: "spki", format: "der" });
  return await webcrypto.subtle.importKey("spki", der, ecParams(curveOf(key)), true, ["verify"]);
}

async function selfSigned(
  name: X509.JsonName,
  window: Window,
  serial: string,
  extensions: X509.Extension[],
  curve: ServiceCurve = "secp384r1",
): Promise<{ certPem: string; privateKeyPem: string }> {
  const x509 = loadX509();
  const { privateKeyPem } = generateEcKeyPair(curve);
  const privateKey = createPrivateKey(privateKeyPem);
  const publicKey = await importPublic(createPublicKey(privateKey));
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: serial,
    subject: name,
    issuer: name,
    ...window,
    publicKey,
    signingKey: await importPrivate(privateKey),
    signingAlgorithm: signingAlgorithm(curve),
    extensions: [
      ...extensions,
      await x509.SubjectKeyIdentifierExtension.create(publicKey),
      await x509.AuthorityKeyIdentifierExtension.create(publicKey),
    ],
  });
  return { certPem: derToPem(new Uint8Array(cert.rawData)), privateKeyPem };
}

/**
 * A new service identity: a P-384 key (or P-256, if the service chose it) and a self-signed CA
 * certificate (CN "Coco Service" by default) that endorses node certificates. Clients pin this
 * certificate and nothing else.
 */
export async function createServiceIdentity(opts: {
  subjectName?: string;
  validityDays?: number;
  now: Date;
  serial: Uint8Array;
  curve?: ServiceCurve;
}): Promise<{ certPem: string; privateKeyPem: string }> {
  const x509 = loadX509();
  const name = commonName(opts.subjectName, "Coco Service", "service subject name");
  const window = validityWindow(opts.now, opts.validityDays);
  const serial = serialHex(opts.serial);
  const { KeyUsageFlags: KU } = x509;
  return selfSigned(
    name,
    window,
    serial,
    [
      new x509.BasicConstraintsExtension(true, undefined, true),
      // digitalSignature as well: the service key also signs endorsements, not only certificates.
      new x509.KeyUsagesExtension(KU.keyCertSign | KU.cRLSign | KU.digitalSignature, true),
    ],
    opts.curve ?? "secp384r1",
  );
}

export function sanNames(altNames: { ips?: string[]; dns?: string[] } | undefined): X509.JsonGeneralNames {
  const ips = altNames ? (altNames.ips ?? []) : ["127.0.0.1"];
  const dns = altNames ? (altNames.dns ?? []) : ["localhost"];
  const names: X509.JsonGeneralNames = [];
  for (const ip of ips) {
    if (isIP(ip) === 0)
      throw new CryptoError(`subject alternative name ${JSON.stringify(ip)} is not an IP address`);
    names.push({ type: "ip", value: ip });
  }
  for (const host of dns) {
    if (
      !/^(\*\.)?([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$/.test(
        host,
      )
    ) {
      throw new CryptoError(`subject alternative name ${JSON.stringify(host)} is not a DNS name`);
    }
    names.push({ type: "dns", value: host });
  }
  if (names.length === 0) throw new CryptoError("a node certificate needs at least one IP or DNS name");
  return names;
}

/**
 * The node's TLS certificate (server and client), for its own key, issued by the service key
 * (both on the service's curve: P-384, or P-256 if the service chose it). Subject alternative names default to IP 127.0.0.1 and DNS localhost; a given `altNames`
 * replaces both.
 */
export async function issueNodeCertificate(opts: {
  service: { certPem: string; privateKeyPem: string };
  nodePublicKeyPem: string;
  subjectName?: string;
  altNames?: { ips?: string[]; dns?: string[] };
  validityDays?: number;
  now: Date;
  serial: Uint8Array;
}): Promise<string> {
  const x509 = loadX509();
  const service = parsePem(opts.service.certPem, "service certificate");
  if ((service.info.keyType !== "P-384" && service.info.keyType !== "P-256") || !service.info.isCA) {
    throw new CryptoError("service certificate must be a P-384 or P-256 CA certificate");
  }
  const servicePrivate = p384PrivateKey(opts.service.privateKeyPem);
  if (!equalBytes(spkiDer(createPublicKey(servicePrivate)), spkiDer(service.native.publicKey))) {
    throw new CryptoError("service private key does not match the service certificate");
  }
  let nodeKey: KeyObject;
  try {
    nodeKey = createPublicKey(opts.nodePublicKeyPem);
  } catch (err) {
    throw new CryptoError(`node public key is not a readable PEM key: ${(err as Error).message}`);
  }
  const serviceCurve = curveOf(servicePrivate);
  if (nodeKey.type !== "public" || nodeKey.asymmetricKeyType !== "ec" || curveOf(nodeKey) !== serviceCurve) {
    throw new CryptoError(
      `node public key must be an ECDSA ${serviceCurve === "secp384r1" ? "P-384" : "P-256"} public key PEM, on the service's curve`,
    );
  }
  const name = commonName(opts.subjectName, "Coco Node", "node subject name");
  const window = validityWindow(opts.now, opts.validityDays);
  const serial = serialHex(opts.serial);
  const san = sanNames(opts.altNames);
  const nodePublic = await importPublic(nodeKey);
  const servicePublic = await importPublic(service.native.publicKey);
  const { KeyUsageFlags: KU, ExtendedKeyUsage: EKU } = x509;
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: serial,
    subject: name,
    // The issuer name is copied from the service certificate as encoded, so chain building,
    // which compares names byte for byte, links the two.
    issuer: service.peculiar.subjectName,
    ...window,
    publicKey: nodePublic,
    signingKey: await importPrivate(servicePrivate),
    signingAlgorithm: signingAlgorithm(serviceCurve),
    extensions: [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.KeyUsagesExtension(KU.digitalSignature, true),
      new x509.ExtendedKeyUsageExtension([EKU.serverAuth, EKU.clientAuth]),
      new x509.SubjectAlternativeNameExtension(san),
      await x509.SubjectKeyIdentifierExtension.create(nodePublic),
      await x509.AuthorityKeyIdentifierExtension.create(servicePublic),
    ],
  });
  return derToPem(new Uint8Array(cert.rawData));
}

/**
 * After a disaster recovery: the new service's endorsement of the previous service identity. A
 * CA certificate with the previous identity's subject and public key, issued by the new service,
 * so a receipt signed under the previous service chains (node cert -> this -> new service
 * certificate) to the one certificate clients now pin.
 */
export async function endorsePreviousService(opts: {
  service: { certPem: string; privateKeyPem: string };
  previousCertPem: string;
  validityDays?: number;
  now: Date;
  serial: Uint8Array;
}): Promise<string> {
  const x509 = loadX509();
  const service = parsePem(opts.service.certPem, "service certificate");
  const previous = parsePem(opts.previousCertPem, "previous service certificate");
  const servicePrivate = p384PrivateKey(opts.service.privateKeyPem);
  const previousPublic = await importPublic(previous.native.publicKey);
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: serialHex(opts.serial),
    // Names copied as encoded, so chain building (byte-for-byte name comparison) links them.
    subject: previous.peculiar.subjectName,
    issuer: service.peculiar.subjectName,
    ...validityWindow(opts.now, opts.validityDays),
    publicKey: previousPublic,
    signingKey: await importPrivate(servicePrivate),
    signingAlgorithm: signingAlgorithm(curveOf(servicePrivate)),
    extensions: [
      new x509.BasicConstraintsExtension(true, 0, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.digitalSignature, true),
      await x509.SubjectKeyIdentifierExtension.create(previousPublic),
      await x509.AuthorityKeyIdentifierExtension.create(await importPublic(service.native.publicKey)),
    ],
  });
  return derToPem(new Uint8Array(cert.rawData));
}

/**
 * A member's or user's identity: a P-384 key and a self-signed certificate with CN=<name> for
 * TLS client authentication. The id is `certFingerprint(certPem)`.
 */
export async function createIdentityCertificate(opts: {
  name: string;
  now: Date;
  serial: Uint8Array;
  validityDays?: number;
}): Promise<{ certPem: string; privateKeyPem: string }> {
  const x509 = loadX509();
  const name = commonName(opts.name, "", "identity name");
  const window = validityWindow(opts.now, opts.validityDays);
  const serial = serialHex(opts.serial);
  return selfSigned(name, window, serial, [
    new x509.BasicConstraintsExtension(false, undefined, true),
    new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
    new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.clientAuth]),
  ]);
}
