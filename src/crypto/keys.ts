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

/** A fresh ECDSA P-384 (secp384r1) key pair. Uses node:crypto's own randomness. */
export function generateP384KeyPair(): KeyPairPem {
  const { privateKey, publicKey } = generateKeyPairSync("ec", {
    namedCurve: "secp384r1",
    privateKeyEncoding: { type: "pkcs8", format: "pem" },
    publicKeyEncoding: { type: "spki", format: "pem" },
  });
  return { privateKeyPem: privateKey, publicKeyPem: publicKey };
}

function requireP384(key: KeyObject, what: string): KeyObject {
  const curve = key.asymmetricKeyDetails?.namedCurve;
  if (key.asymmetricKeyType !== "ec" || curve !== "secp384r1") {
    const kind = key.asymmetricKeyType === "ec" ? `EC ${curve}` : String(key.asymmetricKeyType);
    throw new CryptoError(`${what} must be an ECDSA P-384 (secp384r1) key, got ${kind}`);
  }
  return key;
}

/** Parses a PKCS#8/SEC1 PEM private key (or takes a KeyObject) and insists on P-384. */
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
 * one stands for its public half) and insists on P-384.
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

/** ECDSA P-384 with SHA-384 over `data`; the signature is DER (ASN.1 SEQUENCE of r, s). */
export function signP384(privateKey: string | KeyObject, data: Uint8Array): Uint8Array {
  return new Uint8Array(sign("sha384", data, p384PrivateKey(privateKey)));
}

/**
 * Checks a DER ECDSA P-384/SHA-384 signature. A malformed or wrong signature gives false, never
 * an exception (signatures come from outside); an unusable key is the caller's bug and throws.
 */
/**
 * Parsed verification keys by PEM. Signature records carry their node's certificate as PEM, so
 * every replicated signature would otherwise parse the same few certificates again. Bounded: the
 * PEMs seen are the service's node certificates.
 */
const verificationKeys = new Map<string, KeyObject>();
const MAX_CACHED_KEYS = 256;

function cachedP384PublicKey(publicKey: string | KeyObject): KeyObject {
  if (typeof publicKey !== "string") return p384PublicKey(publicKey);
  let key = verificationKeys.get(publicKey);
  if (!key) {
    key = p384PublicKey(publicKey);
    if (verificationKeys.size >= MAX_CACHED_KEYS) verificationKeys.clear();
    verificationKeys.set(publicKey, key);
  }
  return key;
}

export function verifyP384(publicKey: string | KeyObject, data: Uint8Array, signature: Uint8Array): boolean {
  const key = cachedP384PublicKey(publicKey);
  try {
    return verify("sha384", data, key, signature);
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
