/**
 * The ledger's use of AES-256-GCM (src/crypto's): a 12-byte IV and the 16-byte tag appended to
 * the ciphertext, with failures reported as LedgerErrors that say what failed to open.
 */
import { AES_GCM_IV_LENGTH, AES_GCM_TAG_LENGTH, aesGcmDecrypt, aesGcmEncrypt } from "../crypto/index.ts";
import { LedgerError } from "./errors.ts";

export const TAG_LENGTH = AES_GCM_TAG_LENGTH;
export const IV_LENGTH = AES_GCM_IV_LENGTH;

export function seal(key: Uint8Array, iv: Uint8Array, plaintext: Uint8Array, aad: Uint8Array): Uint8Array {
  return aesGcmEncrypt(key, iv, plaintext, aad);
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
  try {
    return aesGcmDecrypt(key, iv, sealed, aad);
  } catch {
    throw new LedgerError(`${what} failed authentication (wrong ledger secret or altered bytes)`);
  }
}
