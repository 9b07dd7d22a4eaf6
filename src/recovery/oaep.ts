import {
  constants,
  createPrivateKey,
  createPublicKey,
  type KeyObject,
  privateDecrypt,
  publicEncrypt,
} from "node:crypto";
import { sha256 } from "../crypto/index.ts";
import { RecoveryError } from "./errors.ts";

/**
 * RSA-OAEP with SHA-256 and MGF1-SHA-256, empty label (RFC 8017 section 7.1): what CCF uses to
 * wrap a share to a recovery member, and what `openssl pkeyutl -decrypt -pkeyopt
 * rsa_padding_mode:oaep -pkeyopt rsa_oaep_md:sha256` opens.
 *
 * Encryption builds the OAEP encoding here so that its seed comes from the injected random source
 * (node:crypto's OAEP would draw its own, making issued shares irreproducible in the simulator);
 * the RSA operation itself and all decryption are OpenSSL's.
 */

const HASH_LENGTH = 32;
const EMPTY_LABEL_HASH = sha256(new Uint8Array(0));
export const MIN_RSA_BITS = 2048;
export const OAEP_SEED_LENGTH = HASH_LENGTH;

function mgf1(seed: Uint8Array, length: number): Uint8Array {
  const out = new Uint8Array(length);
  const counter = new Uint8Array(4);
  const view = new DataView(counter.buffer);
  for (let offset = 0, i = 0; offset < length; offset += HASH_LENGTH, i++) {
    view.setUint32(0, i);
    out.set(sha256(seed, counter).subarray(0, Math.min(HASH_LENGTH, length - offset)), offset);
  }
  return out;
}

function xorInto(target: Uint8Array, mask: Uint8Array): void {
  for (let i = 0; i < target.length; i++) target[i] = (target[i] ?? 0) ^ (mask[i] ?? 0);
}

function requireRsa(key: KeyObject, what: string): number {
  if (key.asymmetricKeyType !== "rsa") {
    throw new RecoveryError(
      "InvalidInput",
      `${what} must be an RSA key, got ${String(key.asymmetricKeyType)}`,
    );
  }
  const bits = key.asymmetricKeyDetails?.modulusLength ?? 0;
  if (bits < MIN_RSA_BITS) {
    throw new RecoveryError(
      "InvalidInput",
      `${what} is ${bits}-bit RSA; at least ${MIN_RSA_BITS} bits are required`,
    );
  }
  return bits;
}

/** An RSA public key from PEM (SPKI or PKCS#1), at least 2048 bits. */
export function rsaPublicKey(pem: unknown, what: string): KeyObject {
  if (typeof pem !== "string") throw new RecoveryError("InvalidInput", `${what} must be a PEM string`);
  let key: KeyObject;
  try {
    key = createPublicKey(pem);
  } catch (err) {
    throw new RecoveryError("InvalidInput", `${what} is not a PEM public key: ${(err as Error).message}`);
  }
  requireRsa(key, what);
  return key;
}

export function rsaOaepEncrypt(key: KeyObject, message: Uint8Array, seed: Uint8Array): Uint8Array {
  const bits = requireRsa(key, "encryption key");
  const k = Math.ceil(bits / 8);
  if (message.length > k - 2 * HASH_LENGTH - 2) {
    throw new RecoveryError(
      "InvalidInput",
      `a ${message.length}-byte message is too long for ${bits}-bit RSA-OAEP`,
    );
  }
  if (seed.length !== HASH_LENGTH)
    throw new RecoveryError("InvalidInput", `OAEP seed must be ${HASH_LENGTH} bytes`);
  // DB = lHash || zero padding || 0x01 || M
  const db = new Uint8Array(k - HASH_LENGTH - 1);
  db.set(EMPTY_LABEL_HASH, 0);
  db[db.length - message.length - 1] = 0x01;
  db.set(message, db.length - message.length);
  xorInto(db, mgf1(seed, db.length));
  const maskedSeed = Uint8Array.from(seed);
  xorInto(maskedSeed, mgf1(db, HASH_LENGTH));
  // EM = 0x00 || maskedSeed || maskedDB
  const encoded = new Uint8Array(k);
  encoded.set(maskedSeed, 1);
  encoded.set(db, 1 + HASH_LENGTH);
  return new Uint8Array(publicEncrypt({ key, padding: constants.RSA_NO_PADDING }, encoded));
}

export function rsaOaepDecrypt(privateKeyPem: unknown, ciphertext: Uint8Array): Uint8Array {
  if (typeof privateKeyPem !== "string") {
    throw new RecoveryError("InvalidInput", "the member's encryption private key must be a PEM string");
  }
  let key: KeyObject;
  try {
    key = createPrivateKey(privateKeyPem);
  } catch (err) {
    throw new RecoveryError("InvalidInput", `not a PEM private key: ${(err as Error).message}`);
  }
  requireRsa(key, "the member's encryption private key");
  try {
    return new Uint8Array(
      privateDecrypt({ key, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: "sha256" }, ciphertext),
    );
  } catch {
    throw new RecoveryError(
      "DecryptFailed",
      "the encrypted share does not open with this key: it is another member's share, the wrong key, or altered",
    );
  }
}
