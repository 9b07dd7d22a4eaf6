import nodeCrypto, { createHash, timingSafeEqual } from "node:crypto";

/**
 * Every failure in src/crypto: bad input (malformed hex, PEM, keys, certificates) and failed
 * authentication (AEAD tag, sealed envelopes). The message says what is wrong and where.
 */
export class CryptoError extends Error {
  override name = "CryptoError";
}

/**
 * One-shot hashing (`crypto.hash`, Node 20.12 and later) costs about half of a `createHash`
 * object per call for the small inputs of the ledger's hot path (digests, leaves, commit
 * evidence). Its result is a Buffer with its own 32 or 48 bytes of memory, so a plain view of it
 * is a copy-free Uint8Array that pins nothing else.
 */
const oneShot = (nodeCrypto as { hash?: OneShotHash }).hash;
type OneShotHash = (algorithm: string, data: Uint8Array | string, encoding: "buffer") => Buffer;

/** Inputs up to this size are joined and hashed in one call; larger ones are streamed. */
const JOIN_LIMIT = 1024;

function plain(buffer: Buffer): Uint8Array {
  return new Uint8Array(buffer.buffer, buffer.byteOffset, buffer.byteLength);
}

function digest(algorithm: "sha256" | "sha384", parts: Uint8Array[]): Uint8Array {
  if (oneShot !== undefined) {
    if (parts.length === 1) return plain(oneShot(algorithm, parts[0]!, "buffer"));
    let size = 0;
    for (const part of parts) size += part.length;
    if (size <= JOIN_LIMIT) {
      const joined = new Uint8Array(size);
      let at = 0;
      for (const part of parts) {
        joined.set(part, at);
        at += part.length;
      }
      return plain(oneShot(algorithm, joined, "buffer"));
    }
  }
  const hash = createHash(algorithm);
  for (const part of parts) hash.update(part);
  return new Uint8Array(hash.digest());
}

/** SHA-256 of the UTF-8 bytes of `text` (no intermediate byte array). */
export function sha256Utf8(text: string): Uint8Array {
  if (oneShot !== undefined) return plain(oneShot("sha256", text, "buffer"));
  return new Uint8Array(createHash("sha256").update(text, "utf8").digest());
}

/** SHA-256 of the concatenation of `parts` (no separators, no length prefixes). */
export function sha256(...parts: Uint8Array[]): Uint8Array {
  return digest("sha256", parts);
}

/** SHA-384 of the concatenation of `parts`. */
export function sha384(...parts: Uint8Array[]): Uint8Array {
  return digest("sha384", parts);
}

/** Lowercase hex, two digits a byte. */
export function toHex(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString("hex");
}

const HEX_PATTERN = /^[0-9a-fA-F]*$/;

/**
 * Strict hex decoding: either case, no prefix, no whitespace. Buffer.from(s, "hex") silently
 * stops at the first bad digit, which would turn a typo into a shorter, different value.
 */
export function fromHex(text: string): Uint8Array {
  if (typeof text !== "string") throw new CryptoError(`hex input must be a string, got ${typeof text}`);
  if (text.length % 2 !== 0) {
    throw new CryptoError(`hex input has odd length ${text.length}`);
  }
  if (!HEX_PATTERN.test(text)) {
    const at = text.search(/[^0-9a-fA-F]/);
    throw new CryptoError(`hex input has a non-hex character ${JSON.stringify(text[at])} at offset ${at}`);
  }
  return new Uint8Array(Buffer.from(text, "hex"));
}

/** Byte equality; when lengths match, the time taken does not depend on where bytes differ. */
export function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.byteLength !== b.byteLength) return false;
  return timingSafeEqual(a, b);
}
