import { AES_GCM_IV_LENGTH, AES_GCM_TAG_LENGTH, aesGcmDecrypt, aesGcmEncrypt } from "./aead.ts";
import { CryptoError, equalBytes } from "./hash.ts";

/*
 * Node secrets at rest. On SEV-SNP the sealing key would be derived by the hardware and bound
 * to the measurement; on the virtual (development) platform the shell keeps a 32-byte key file,
 * created once with mode 0600 next to the node's state. Either way a secret is written to disk
 * only inside one of these envelopes, never in clear.
 *
 * Envelope, version 1:
 *   magic "cocoseal" (8 bytes) | version 0x01 | IV (12 bytes) | AES-256-GCM ciphertext | tag (16)
 * The AAD is magic | version | IV | label (UTF-8), so a sealed file cannot be replayed under
 * another label (say, a ledger secret presented as a node key) and its header cannot be edited.
 */

const MAGIC = new TextEncoder().encode("cocoseal");
const VERSION = 1;
const HEADER_LENGTH = MAGIC.length + 1 + AES_GCM_IV_LENGTH;
const MAX_LABEL_BYTES = 256;

function checkKey(key: Uint8Array): void {
  if (!(key instanceof Uint8Array) || key.length !== 32) {
    throw new CryptoError(`sealing key must be 32 bytes, got ${key?.length}`);
  }
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

function aad(header: Uint8Array, label: Uint8Array): Uint8Array {
  const out = new Uint8Array(header.length + label.length);
  out.set(header, 0);
  out.set(label, header.length);
  return out;
}

/** Seals a JSON-serialisable value under `sealingKey`, bound to `label`. `iv` must never repeat under one key. */
export function sealJson(sealingKey: Uint8Array, label: string, value: unknown, iv: Uint8Array): Uint8Array {
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
  const header = new Uint8Array(HEADER_LENGTH);
  header.set(MAGIC, 0);
  header[MAGIC.length] = VERSION;
  header.set(iv, MAGIC.length + 1);
  const plaintext = new TextEncoder().encode(json);
  const body = aesGcmEncrypt(sealingKey, iv, plaintext, aad(header, labelUtf8));
  plaintext.fill(0);
  const out = new Uint8Array(header.length + body.length);
  out.set(header, 0);
  out.set(body, header.length);
  return out;
}

/**
 * Opens an envelope made by sealJson with the same key and label. A wrong key, a wrong label,
 * or any altered byte gives CryptoError; the JSON is not checked against T (the caller's job).
 */
export function unsealJson<T>(sealingKey: Uint8Array, label: string, sealed: Uint8Array): T {
  checkKey(sealingKey);
  const labelUtf8 = labelBytes(label);
  if (!(sealed instanceof Uint8Array) || sealed.length < HEADER_LENGTH + AES_GCM_TAG_LENGTH) {
    throw new CryptoError(
      `sealed ${JSON.stringify(label)} is too short (${sealed?.length} bytes) to be an envelope`,
    );
  }
  if (!equalBytes(sealed.subarray(0, MAGIC.length), MAGIC)) {
    throw new CryptoError(`sealed ${JSON.stringify(label)} is not a Coco sealed envelope (bad magic)`);
  }
  const version = sealed[MAGIC.length];
  if (version !== VERSION) {
    throw new CryptoError(
      `sealed ${JSON.stringify(label)} has envelope version ${version}; only ${VERSION} is known`,
    );
  }
  const header = sealed.subarray(0, HEADER_LENGTH);
  const iv = sealed.subarray(MAGIC.length + 1, HEADER_LENGTH);
  let plaintext: Uint8Array;
  try {
    plaintext = aesGcmDecrypt(sealingKey, iv, sealed.subarray(HEADER_LENGTH), aad(header, labelUtf8));
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
