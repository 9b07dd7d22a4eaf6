import {
  createPrivateKey,
  createPublicKey,
  generateKeyPairSync,
  type KeyObject,
  sign,
  verify,
} from "node:crypto";
import { CryptoError, sha256, toHex } from "./hash.ts";

/** A key pair as PEM text: PKCS#8 private key, SPKI public key. */
export interface KeyPairPem {
  privateKeyPem: string;
  publicKeyPem: string;
}

/**
 * The curves a service may choose for its service and node keys, as CCF offers: secp384r1
 * (P-384, the default) and secp256r1 (P-256, whose signatures cost a tenth of P-384's in
 * OpenSSL; BENCHMARKS.md). Every node of a service uses its service key's curve.
 */
export type ServiceCurve = "secp384r1" | "secp256r1";
export const SERVICE_CURVES: readonly ServiceCurve[] = ["secp384r1", "secp256r1"];

/** node:crypto's name of a curve ("prime256v1" for P-256) to Coco's. */
function serviceCurveOf(key: KeyObject): ServiceCurve | undefined {
  if (key.asymmetricKeyType !== "ec") return undefined;
  const curve = key.asymmetricKeyDetails?.namedCurve;
  if (curve === "secp384r1") return "secp384r1";
  if (curve === "prime256v1" || curve === "secp256r1") return "secp256r1";
  return undefined;
}

/** The service curve of an EC key, certificate or PEM; throws for anything else. */
export function curveOf(key: string | KeyObject): ServiceCurve {
  const parsed =
    typeof key !== "string"
      ? key
      : /-----BEGIN [A-Z ]*PRIVATE KEY-----/.test(key)
        ? createPrivateKey(key)
        : parsePublicPem(key, "key");
  return requireServiceCurve(parsed, "key").curve;
}

/** The ECDSA hash that goes with a curve, as CCF signs: SHA-384 on P-384, SHA-256 on P-256. */
export function hashForCurve(curve: ServiceCurve): "sha384" | "sha256" {
  return curve === "secp384r1" ? "sha384" : "sha256";
}

/** A fresh ECDSA key pair on `curve` (P-384 by default). Uses node:crypto's own randomness. */
export function generateEcKeyPair(curve: ServiceCurve = "secp384r1"): KeyPairPem {
  if (!SERVICE_CURVES.includes(curve)) {
    throw new CryptoError(`curve must be one of ${SERVICE_CURVES.join(", ")}, got ${String(curve)}`);
  }
  const { privateKey, publicKey } = generateKeyPairSync("ec", {
    namedCurve: curve === "secp256r1" ? "prime256v1" : curve,
    privateKeyEncoding: { type: "pkcs8", format: "pem" },
    publicKeyEncoding: { type: "spki", format: "pem" },
  });
  return { privateKeyPem: privateKey, publicKeyPem: publicKey };
}

/** A fresh ECDSA P-384 (secp384r1) key pair. Uses node:crypto's own randomness. */
export function generateP384KeyPair(): KeyPairPem {
  return generateEcKeyPair("secp384r1");
}

function requireServiceCurve(key: KeyObject, what: string): { key: KeyObject; curve: ServiceCurve } {
  const curve = serviceCurveOf(key);
  if (curve === undefined) {
    const kind =
      key.asymmetricKeyType === "ec"
        ? `EC ${key.asymmetricKeyDetails?.namedCurve}`
        : String(key.asymmetricKeyType);
    throw new CryptoError(`${what} must be an ECDSA P-384 (secp384r1) or P-256 (secp256r1) key, got ${kind}`);
  }
  return { key, curve };
}

function requireP384(key: KeyObject, what: string): KeyObject {
  return requireServiceCurve(key, what).key;
}

/**
 * Parses a PKCS#8/SEC1 PEM private key (or takes a KeyObject) and insists on a service curve
 * (P-384, or P-256 for a service that chose it; the name is from when P-384 was the only one).
 */
export function p384PrivateKey(key: string | KeyObject): KeyObject {
  if (typeof key !== "string") {
    if (key.type !== "private") throw new CryptoError(`signing key must be a private key, got ${key.type}`);
    return requireP384(key, "signing key");
  }
  let parsed: KeyObject;
  try {
    parsed = createPrivateKey(key);
  } catch (err) {
    throw new CryptoError(`signing key is not a readable PEM private key: ${(err as Error).message}`);
  }
  return requireP384(parsed, "signing key");
}

/**
 * Parses an SPKI PEM public key or an X.509 certificate PEM (or takes a KeyObject; a private
 * one stands for its public half) and insists on a service curve (P-384 or P-256).
 */
export function p384PublicKey(key: string | KeyObject): KeyObject {
  if (typeof key !== "string") {
    return requireP384(key.type === "private" ? createPublicKey(key) : key, "verification key");
  }
  return requireP384(parsePublicPem(key, "verification key"), "verification key");
}

function parsePublicPem(pem: string, what: string): KeyObject {
  if (typeof pem !== "string") throw new CryptoError(`${what} must be a PEM string, got ${typeof pem}`);
  // createPublicKey would happily derive a public key from a private one; a private key in a
  // slot meant for public material is almost always a mix-up worth stopping.
  if (/-----BEGIN [A-Z ]*PRIVATE KEY-----/.test(pem)) {
    throw new CryptoError(`${what} must be a public key or certificate PEM, got a private key`);
  }
  try {
    return createPublicKey(pem);
  } catch (err) {
    throw new CryptoError(
      `${what} is not a readable public key or certificate PEM: ${(err as Error).message}`,
    );
  }
}

/**
 * ECDSA over `data` with the hash of the key's curve (P-384: SHA-384, P-256: SHA-256); the
 * signature is DER (ASN.1 SEQUENCE of r, s).
 */
export function signP384(privateKey: string | KeyObject, data: Uint8Array): Uint8Array {
  const key = requireServiceCurve(p384PrivateKey(privateKey), "signing key");
  return new Uint8Array(sign(hashForCurve(key.curve), data, key.key));
}

/**
 * Checks a DER ECDSA signature (P-384/SHA-384, or P-256/SHA-256 for a P-256 key). A malformed or wrong signature gives false, never
 * an exception (signatures come from outside); an unusable key is the caller's bug and throws.
 */
/**
 * Parsed verification keys by PEM. Signature records carry their node's certificate as PEM, so
 * every replicated signature would otherwise parse the same few certificates again. Bounded: the
 * PEMs seen are the service's node certificates.
 */
const verificationKeys = new Map<string, { key: KeyObject; curve: ServiceCurve }>();
const MAX_CACHED_KEYS = 256;

function cachedP384PublicKey(publicKey: string | KeyObject): { key: KeyObject; curve: ServiceCurve } {
  if (typeof publicKey !== "string") return requireServiceCurve(p384PublicKey(publicKey), "verification key");
  let key = verificationKeys.get(publicKey);
  if (!key) {
    key = requireServiceCurve(p384PublicKey(publicKey), "verification key");
    if (verificationKeys.size >= MAX_CACHED_KEYS) verificationKeys.clear();
    verificationKeys.set(publicKey, key);
  }
  return key;
}

export function verifyP384(publicKey: string | KeyObject, data: Uint8Array, signature: Uint8Array): boolean {
  const { key, curve } = cachedP384PublicKey(publicKey);
  try {
    return verify(hashForCurve(curve), data, key, signature);
  } catch {
    return false;
  }
}

/** The SPKI DER of a public key PEM, or of the key inside a certificate PEM. Any key type. */
export function publicKeyDer(publicKeyPemOrCertPem: string): Uint8Array {
  const key = parsePublicPem(publicKeyPemOrCertPem, "public key");
  return new Uint8Array(key.export({ type: "spki", format: "der" }));
}

/** A node's id: hex SHA-256 of its public key's SPKI DER. Takes the key or the node's cert. */
export function nodeIdOf(publicKeyPem: string): string {
  return toHex(sha256(publicKeyDer(publicKeyPem)));
}
