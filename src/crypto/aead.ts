import { createCipheriv, createDecipheriv } from "node:crypto";
import { CryptoError } from "./hash.ts";

/** GCM's 96-bit IV: the only length that needs no extra hashing, and the one callers must make unique. */
export const AES_GCM_IV_LENGTH = 12;
export const AES_GCM_TAG_LENGTH = 16;

function cipherName(key: Uint8Array, iv: Uint8Array): "aes-128-gcm" | "aes-192-gcm" | "aes-256-gcm" {
  if (!(key instanceof Uint8Array)) throw new CryptoError("AES-GCM key must be a Uint8Array");
  if (!(iv instanceof Uint8Array) || iv.length !== AES_GCM_IV_LENGTH) {
    throw new CryptoError(`AES-GCM IV must be ${AES_GCM_IV_LENGTH} bytes, got ${iv?.length}`);
  }
  switch (key.length) {
    case 16:
      return "aes-128-gcm";
    case 24:
      return "aes-192-gcm";
    case 32:
      return "aes-256-gcm";
    default:
      throw new CryptoError(`AES-GCM key must be 16, 24 or 32 bytes, got ${key.length}`);
  }
}

/**
 * AES-GCM (AES-256 with a 32-byte key, as Coco uses everywhere). Returns ciphertext || 16-byte
 * tag. The IV must never repeat under one key: that is the caller's contract.
 */
export function aesGcmEncrypt(
  key: Uint8Array,
  iv: Uint8Array,
  plaintext: Uint8Array,
  aad?: Uint8Array,
): Uint8Array {
  const cipher = createCipheriv(cipherName(key, iv), key, iv, { authTagLength: AES_GCM_TAG_LENGTH });
  if (aad) cipher.setAAD(aad);
  const body = cipher.update(plaintext);
  const tail = cipher.final();
  const tag = cipher.getAuthTag();
  const out = new Uint8Array(body.length + tail.length + tag.length);
  out.set(body, 0);
  out.set(tail, body.length);
  out.set(tag, body.length + tail.length);
  return out;
}

/** Opens ciphertext || tag. Any mismatch of key, IV, AAD or bytes is one CryptoError. */
export function aesGcmDecrypt(
  key: Uint8Array,
  iv: Uint8Array,
  sealed: Uint8Array,
  aad?: Uint8Array,
): Uint8Array {
  const name = cipherName(key, iv);
  if (!(sealed instanceof Uint8Array) || sealed.length < AES_GCM_TAG_LENGTH) {
    throw new CryptoError(
      `AES-GCM input is ${sealed?.length} bytes, shorter than its ${AES_GCM_TAG_LENGTH}-byte tag`,
    );
  }
  const split = sealed.length - AES_GCM_TAG_LENGTH;
  const decipher = createDecipheriv(name, key, iv, { authTagLength: AES_GCM_TAG_LENGTH });
  decipher.setAuthTag(sealed.subarray(split));
  if (aad) decipher.setAAD(aad);
  const body = decipher.update(sealed.subarray(0, split));
  try {
    const tail = decipher.final();
    // GCM is a stream mode: `final` adds nothing and `update` returned a buffer of its own,
    // which a plain view hands back without a copy.
    if (tail.length === 0 && body.byteOffset === 0 && body.buffer.byteLength === body.length) {
      return new Uint8Array(body.buffer, 0, body.length);
    }
    const out = new Uint8Array(body.length + tail.length);
    out.set(body, 0);
    out.set(tail, body.length);
    return out;
  } catch {
    body.fill(0); // unauthenticated plaintext must not linger
    throw new CryptoError("AES-GCM authentication failed: wrong key, IV or AAD, or the data was altered");
  }
}
