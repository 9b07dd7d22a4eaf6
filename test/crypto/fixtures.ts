/**
 * Test identities built with @peculiar/x509 directly: a P-384 service CA, node certificates it
 * issues, and endorsements of an old service key by a new one (what a recovered service hands out).
 */
import "reflect-metadata"; // @peculiar/x509 needs a Reflect polyfill loaded first
import { createHash, createPublicKey, webcrypto } from "node:crypto";
import * as x509 from "@peculiar/x509";

x509.cryptoProvider.set(webcrypto as unknown as Parameters<typeof x509.cryptoProvider.set>[0]);

type CryptoKeyPair = webcrypto.CryptoKeyPair;

const EC_P384 = { name: "ECDSA", namedCurve: "P-384" } as const;
const SIGN_P384 = { name: "ECDSA", hash: "SHA-384" } as const;
export const VALID_FROM = new Date("2024-01-01T00:00:00Z");
export const VALID_TO = new Date("2034-01-01T00:00:00Z");

export interface Identity {
  certPem: string;
  keyPem: string;
  cert: x509.X509Certificate;
  keys: CryptoKeyPair;
}

export interface NodeIdentity extends Identity {
  /** Hex SHA-256 of the DER public key (SPKI), as node ids are. */
  nodeId: string;
}

let serial = 1;
function nextSerial(): string {
  serial += 1;
  return serial.toString(16).padStart(16, "0");
}

async function generateKeys(namedCurve: "P-256" | "P-384" = "P-384"): Promise<CryptoKeyPair> {
  return (await webcrypto.subtle.generateKey({ ...EC_P384, namedCurve }, true, [
    "sign",
    "verify",
  ])) as CryptoKeyPair;
}

async function privatePem(keys: CryptoKeyPair): Promise<string> {
  const der = await webcrypto.subtle.exportKey("pkcs8", keys.privateKey);
  return x509.PemConverter.encode(der, "PRIVATE KEY");
}

/** A self-signed service CA on P-384, as `service_cert.pem`. */
export async function makeServiceCa(name = "CN=Coco Service"): Promise<Identity> {
  const keys = await generateKeys();
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: nextSerial(),
    name,
    keys,
    notBefore: VALID_FROM,
    notAfter: VALID_TO,
    signingAlgorithm: SIGN_P384,
    extensions: [
      new x509.BasicConstraintsExtension(true, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.digitalSignature, true),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
    ],
  });
  return { certPem: cert.toString("pem"), keyPem: await privatePem(keys), cert, keys };
}

/** A node certificate issued by `issuer`; `keys` lets a test reuse a node key. */
export async function makeNode(
  issuer: Identity,
  opts: {
    name?: string;
    notBefore?: Date;
    notAfter?: Date;
    keys?: CryptoKeyPair;
    withAuthorityKeyId?: boolean;
  } = {},
): Promise<NodeIdentity> {
  const keys = opts.keys ?? (await generateKeys());
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: nextSerial(),
    subject: opts.name ?? "CN=Coco Node",
    issuer: issuer.cert.subject,
    publicKey: keys.publicKey,
    signingKey: issuer.keys.privateKey,
    notBefore: opts.notBefore ?? VALID_FROM,
    notAfter: opts.notAfter ?? VALID_TO,
    signingAlgorithm: SIGN_P384,
    extensions: [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
      // Without it only the issuer's name (and signature) tie a certificate to its issuer.
      ...(opts.withAuthorityKeyId === false
        ? []
        : [await x509.AuthorityKeyIdentifierExtension.create(issuer.keys.publicKey)]),
    ],
  });
  const certPem = cert.toString("pem");
  const spki = createPublicKey(certPem).export({ type: "spki", format: "der" });
  return {
    certPem,
    keyPem: await privatePem(keys),
    cert,
    keys,
    nodeId: createHash("sha256").update(spki).digest("hex"),
  };
}

/** `previous`'s key and name, certified by `current`: the endorsement a recovered service gives. */
export async function endorse(previous: Identity, current: Identity): Promise<string> {
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: nextSerial(),
    subject: previous.cert.subject,
    issuer: current.cert.subject,
    publicKey: previous.keys.publicKey,
    signingKey: current.keys.privateKey,
    notBefore: VALID_FROM,
    notAfter: VALID_TO,
    signingAlgorithm: SIGN_P384,
    extensions: [
      new x509.BasicConstraintsExtension(true, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.digitalSignature, true),
      await x509.SubjectKeyIdentifierExtension.create(previous.keys.publicKey),
      await x509.AuthorityKeyIdentifierExtension.create(current.keys.publicKey),
    ],
  });
  return cert.toString("pem");
}

/** A bare P-256 key pair as PEM, for ES256 tests. */
export async function makeP256KeyPem(): Promise<{ keyPem: string; publicPem: string }> {
  const keys = await generateKeys("P-256");
  const spki = await webcrypto.subtle.exportKey("spki", keys.publicKey);
  return { keyPem: await privatePem(keys), publicPem: x509.PemConverter.encode(spki, "PUBLIC KEY") };
}
