/** AES-256-GCM with a 12-byte IV and a 16-byte tag appended to the ciphertext. */
import { createCipheriv, createDecipheriv } from "node:crypto";
import { concatBytes } from "./bytes.ts";
import { LedgerError } from "./errors.ts";

export const TAG_LENGTH = 16;
export const IV_LENGTH = 12;

export function seal(key: Uint8Array, iv: Uint8Array, plaintext: Uint8Array, aad: Uint8Array): Uint8Array {
  const cipher = createCipheriv("aes-256-gcm", key, iv, { authTagLength: TAG_LENGTH });
  cipher.setAAD(aad);
  return concatBytes([cipher.update(plaintext), cipher.final(), cipher.getAuthTag()]);
}

/** Throws LedgerError(`what` failed authentication) on any mismatch of key, IV, AAD or bytes. */
export function unseal(
  key: Uint8Array,
  iv: Uint8Array,
  sealed: Uint8Array,
  aad: Uint8Array,
  what: string,
): Uint8Array {
  if (sealed.length < TAG_LENGTH) throw new LedgerError(`${what} is shorter than its tag`);
  const decipher = createDecipheriv("aes-256-gcm", key, iv, { authTagLength: TAG_LENGTH });
  decipher.setAAD(aad);
  decipher.setAuthTag(sealed.subarray(sealed.length - TAG_LENGTH));
  try {
    return concatBytes([decipher.update(sealed.subarray(0, sealed.length - TAG_LENGTH)), decipher.final()]);
  } catch {
    throw new LedgerError(`${what} failed authentication (wrong ledger secret or altered bytes)`);
  }
}
