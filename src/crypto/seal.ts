import { hkdfSync } from "node:crypto";
import { AES_GCM_IV_LENGTH, AES_GCM_TAG_LENGTH, aesGcmDecrypt, aesGcmEncrypt } from "./aead.ts";
import { CryptoError, equalBytes } from "./hash.ts";

/*
 * Node secrets at rest. The AES-256-GCM key comes from a platform root key through HKDF (see
 * sealingKeyFrom): on SEV-SNP that root is derived by the AMD secure processor and bound to the
 * guest's measurement; on the virtual (development) platform it is a key file outside the node's
 * directory. A secret is written to disk only inside one of these envelopes, never in clear.
 *
 * Envelope, version 2 (written):
 *   magic "cocoseal" (8) | 0x02 | header length (u16 big-endian) | header (UTF-8 JSON object)
 *   | IV (12) | AES-256-GCM ciphertext | tag (16)
 * The header says, in clear, how to obtain the key again (which platform key, which TCB and guest
 * SVN it was requested with), so a node can ask for the same key after a restart, or say exactly
 * why it cannot. The AAD is everything before the ciphertext followed by the label (UTF-8), so a
 * sealed file cannot be replayed under another label and neither its header nor its IV can be edited.
 *
 * Version 1 (read only, files written before sealing keys went through HKDF):
 *   magic | 0x01 | IV (12) | ciphertext | tag, sealed with the root key itself; AAD = magic | 0x01 | IV | label.
 */

const MAGIC = new TextEncoder().encode("cocoseal");
const V1 = 1;
const V2 = 2;
const V1_HEADER_LENGTH = MAGIC.length + 1 + AES_GCM_IV_LENGTH;
const MAX_LABEL_BYTES = 256;
const MAX_HEADER_BYTES = 4096;
/** HKDF info: names what the derived key is for, so the platform key is never used directly. */
const SEALING_KEY_INFO = new TextEncoder().encode("coco sealing key v2: AES-256-GCM node secrets");

/** What a sealed envelope says about itself before it is opened (not authenticated until then). */
export type SealHeader = { version: 1 } | { version: 2; header: Record<string, unknown> };

function checkKey(key: Uint8Array, what = "sealing key"): void {
  if (!(key instanceof Uint8Array) || key.length !== 32) {
    throw new CryptoError(`${what} must be 32 bytes, got ${key?.length}`);
  }
}

/**
 * The AES-256-GCM key that seals node secrets, from a 32-byte platform key (SNP's derived key or
 * the virtual platform's key file): HKDF-SHA256, empty salt, a fixed context string.
 */
export function sealingKeyFrom(platformKey: Uint8Array): Uint8Array {
  checkKey(platformKey, "platform key");
  return new Uint8Array(hkdfSync("sha256", platformKey, new Uint8Array(0), SEALING_KEY_INFO, 32));
}

function labelBytes(label: string): Uint8Array {
  if (typeof label !== "string" || label.length === 0)
    throw new CryptoError("seal label must be a non-empty string");
  const bytes = new TextEncoder().encode(label);
  if (bytes.length > MAX_LABEL_BYTES) {
    throw new CryptoError(`seal label is ${bytes.length} bytes, more than ${MAX_LABEL_BYTES}`);
  }
  return bytes;
}

function concat(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const part of parts) {
    out.set(part, at);
    at += part.length;
  }
  return out;
}

function headerBytes(header: Record<string, unknown>): Uint8Array {
  if (typeof header !== "object" || header === null || Array.isArray(header)) {
    throw new CryptoError("seal header must be a JSON object");
  }
  const bytes = new TextEncoder().encode(JSON.stringify(header));
  if (bytes.length > MAX_HEADER_BYTES) {
    throw new CryptoError(`seal header is ${bytes.length} bytes, more than ${MAX_HEADER_BYTES}`);
  }
  return bytes;
}

/**
 * Seals a JSON-serialisable value under `sealingKey`, bound to `label`. With a `header` (version
 * 2) the header is stored in clear and authenticated; without one, a version 1 envelope. `iv` must
 * never repeat under one key.
 */
export function sealJson(
  sealingKey: Uint8Array,
  label: string,
  value: unknown,
  iv: Uint8Array,
  header?: Record<string, unknown>,
): Uint8Array {
  checkKey(sealingKey);
  const labelUtf8 = labelBytes(label);
  if (!(iv instanceof Uint8Array) || iv.length !== AES_GCM_IV_LENGTH) {
    throw new CryptoError(`seal IV must be ${AES_GCM_IV_LENGTH} bytes, got ${iv?.length}`);
  }
  let json: string | undefined;
  try {
    json = JSON.stringify(value);
  } catch (err) {
    throw new CryptoError(
      `value sealed as ${JSON.stringify(label)} is not JSON-serialisable: ${(err as Error).message}`,
    );
  }
  if (json === undefined) {
    throw new CryptoError(
      `value sealed as ${JSON.stringify(label)} is not JSON-serialisable (${typeof value})`,
    );
  }
  let prefix: Uint8Array;
  if (header === undefined) {
    prefix = concat(MAGIC, Uint8Array.of(V1), iv);
  } else {
    const h = headerBytes(header);
    prefix = concat(MAGIC, Uint8Array.of(V2, h.length >> 8, h.length & 0xff), h, iv);
  }
  const plaintext = new TextEncoder().encode(json);
  const body = aesGcmEncrypt(sealingKey, iv, plaintext, concat(prefix, labelUtf8));
  plaintext.fill(0);
  return concat(prefix, body);
}

/** Splits an envelope into its authenticated prefix (header and IV), IV, header and body. */
function parseEnvelope(label: string, sealed: Uint8Array) {
  const name = JSON.stringify(label);
  if (!(sealed instanceof Uint8Array) || sealed.length < V1_HEADER_LENGTH + AES_GCM_TAG_LENGTH) {
    throw new CryptoError(`sealed ${name} is too short (${sealed?.length} bytes) to be an envelope`);
  }
  if (!equalBytes(sealed.subarray(0, MAGIC.length), MAGIC)) {
    throw new CryptoError(`sealed ${name} is not a Coco sealed envelope (bad magic)`);
  }
  const version = sealed[MAGIC.length];
  if (version === V1) {
    return {
      info: { version: 1 } as SealHeader,
      prefix: sealed.subarray(0, V1_HEADER_LENGTH),
      iv: sealed.subarray(MAGIC.length + 1, V1_HEADER_LENGTH),
      body: sealed.subarray(V1_HEADER_LENGTH),
    };
  }
  if (version !== V2) {
    throw new CryptoError(`sealed ${name} has envelope version ${version}; only ${V1} and ${V2} are known`);
  }
  const start = MAGIC.length + 3;
  const length = ((sealed[MAGIC.length + 1] ?? 0) << 8) | (sealed[MAGIC.length + 2] ?? 0);
  const end = start + length;
  if (length > MAX_HEADER_BYTES || sealed.length < end + AES_GCM_IV_LENGTH + AES_GCM_TAG_LENGTH) {
    throw new CryptoError(`sealed ${name} has a header length (${length}) its size cannot hold`);
  }
  let header: unknown;
  try {
    header = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(sealed.subarray(start, end)));
  } catch (err) {
    throw new CryptoError(`sealed ${name} has an unreadable header: ${(err as Error).message}`);
  }
  if (typeof header !== "object" || header === null || Array.isArray(header)) {
    throw new CryptoError(`sealed ${name} has a header that is not a JSON object`);
  }
  return {
    info: { version: 2, header: header as Record<string, unknown> } as SealHeader,
    prefix: sealed.subarray(0, end + AES_GCM_IV_LENGTH),
    iv: sealed.subarray(end, end + AES_GCM_IV_LENGTH),
    body: sealed.subarray(end + AES_GCM_IV_LENGTH),
  };
}

/**
 * What an envelope says about how it was sealed, read without the key (so the caller can obtain
 * the right key first). Trust it only once unsealJson has authenticated it.
 */
export function readSealHeader(label: string, sealed: Uint8Array): SealHeader {
  labelBytes(label);
  return parseEnvelope(label, sealed).info;
}

/**
 * Opens an envelope made by sealJson with the same key and label. A wrong key, a wrong label,
 * or any altered byte gives CryptoError; the JSON is not checked against T (the caller's job).
 */
export function unsealJson<T>(sealingKey: Uint8Array, label: string, sealed: Uint8Array): T {
  checkKey(sealingKey);
  const labelUtf8 = labelBytes(label);
  const { prefix, iv, body } = parseEnvelope(label, sealed);
  let plaintext: Uint8Array;
  try {
    plaintext = aesGcmDecrypt(sealingKey, iv, body, concat(prefix, labelUtf8));
  } catch {
    throw new CryptoError(
      `cannot unseal ${JSON.stringify(label)}: wrong sealing key or label, or the envelope was altered`,
    );
  }
  try {
    return JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(plaintext)) as T;
  } catch (err) {
    throw new CryptoError(`sealed ${JSON.stringify(label)} does not hold JSON: ${(err as Error).message}`);
  } finally {
    plaintext.fill(0);
  }
}
