import {
  AES_GCM_IV_LENGTH,
  AES_GCM_TAG_LENGTH,
  aesGcmDecrypt,
  aesGcmEncrypt,
  sha256,
  toHex,
} from "../crypto/index.ts";
import { fromBase64, toBase64 } from "./base64.ts";
import { RecoveryError } from "./errors.ts";
import { OAEP_SEED_LENGTH, rsaOaepDecrypt, rsaOaepEncrypt, rsaPublicKey } from "./oaep.ts";
import { draw, type RandomBytes } from "./random.ts";
import { MAX_SHARES, splitSecret } from "./shamir.ts";

/**
 * Recovery shares, as in CCF: a fresh random 32-byte wrapping key encrypts the latest ledger
 * secret (AES-256-GCM); the wrapping key is split k-of-n with Shamir; each share is RSA-OAEP
 * encrypted to one recovery member's encryption key. All of it can sit on the public ledger:
 * without k members' private keys none of it opens.
 *
 * Beyond CCF: next to each encrypted share sits a commitment to it (a domain-separated SHA-256),
 * so a node refuses a wrong or corrupted share when it is submitted, naming the member, instead of
 * failing at the end with no way to tell which of k shares was bad.
 */

export const WRAPPING_KEY_LENGTH = 32;
/** A share of the wrapping key: 32 bytes of polynomial values and the x coordinate. */
export const SHARE_LENGTH = WRAPPING_KEY_LENGTH + 1;
const MAX_LEDGER_SECRET_LENGTH = 1024;
const MEMBER_ID_PATTERN = /^[0-9a-f]{64}$/;
const COMMITMENT_PATTERN = /^[0-9a-f]{64}$/;
const encoder = new TextEncoder();
/** Binds the wrapped secret to this use, so the wrapping key's ciphertext is useless elsewhere. */
const WRAP_AAD = encoder.encode("coco.recovery.wrapped-ledger-secret.v1");
const COMMITMENT_DOMAIN = encoder.encode("coco.recovery.share-commitment.v1\0");

export interface RecoveryMember {
  /** Member id: hex SHA-256 of the member certificate. */
  id: string;
  /** The member's RSA encryption public key (PEM), at least 2048 bits. */
  encryptionPublicKeyPem: string;
}

/** What goes on the ledger (plain JSON). */
export interface IssuedRecoveryShares {
  /** Shares needed to recover. */
  threshold: number;
  /** base64 of IV (12 bytes) || AES-256-GCM ciphertext of the ledger secret || tag (16 bytes). */
  encryptedLedgerSecret: string;
  /** Member id -> base64 RSA-OAEP-SHA-256 ciphertext of that member's share. */
  shares: Record<string, string>;
  /** Member id -> hex commitment to that member's share (shareCommitment). */
  commitments: Record<string, string>;
}

function checkMemberId(id: unknown, where: string): string {
  if (typeof id !== "string" || !MEMBER_ID_PATTERN.test(id)) {
    throw new RecoveryError("InvalidInput", `${where}: member id must be 64 lowercase hex digits`);
  }
  return id;
}

/**
 * The commitment to one member's share: SHA-256 over a domain label, the member id (fixed length)
 * and the share. A share is 32 uniformly random bytes (or, at threshold 1, the random key itself),
 * so publishing its hash reveals nothing usable.
 */
export function shareCommitment(memberId: string, share: Uint8Array): string {
  checkMemberId(memberId, "shareCommitment");
  return toHex(sha256(COMMITMENT_DOMAIN, encoder.encode(memberId), share));
}

export async function issueRecoveryShares(input: {
  ledgerSecret: Uint8Array;
  members: RecoveryMember[];
  threshold: number;
  randomBytes: RandomBytes;
}): Promise<IssuedRecoveryShares> {
  const { ledgerSecret, members, threshold, randomBytes } = input;
  if (!(ledgerSecret instanceof Uint8Array) || ledgerSecret.length === 0) {
    throw new RecoveryError("InvalidInput", "ledgerSecret must be non-empty bytes");
  }
  if (ledgerSecret.length > MAX_LEDGER_SECRET_LENGTH) {
    throw new RecoveryError("InvalidInput", `ledgerSecret is longer than ${MAX_LEDGER_SECRET_LENGTH} bytes`);
  }
  if (typeof randomBytes !== "function")
    throw new RecoveryError("InvalidInput", "randomBytes must be a function");
  if (!Array.isArray(members) || members.length === 0 || members.length > MAX_SHARES) {
    throw new RecoveryError(
      "InvalidInput",
      `recovery shares need 1 to ${MAX_SHARES} recovery members, got ${Array.isArray(members) ? members.length : "none"}`,
    );
  }
  if (!Number.isSafeInteger(threshold) || threshold < 1 || threshold > members.length) {
    throw new RecoveryError(
      "InvalidInput",
      `recovery threshold must be an integer from 1 to the number of recovery members (${members.length}), got ${threshold}`,
    );
  }
  // Parse every key before drawing randomness, so bad input fails before anything is made.
  const seen = new Set<string>();
  const parsed = members.map((member, i) => {
    const id = checkMemberId(member?.id, `members[${i}]`);
    if (seen.has(id)) throw new RecoveryError("InvalidInput", `member ${id} is listed twice`);
    seen.add(id);
    return { id, key: rsaPublicKey(member.encryptionPublicKeyPem, `members[${i}] (${id}) encryption key`) };
  });
  // Share x coordinates follow member id order, so the result depends only on the member set.
  parsed.sort((a, b) => (a.id < b.id ? -1 : 1));

  const wrappingKey = draw(randomBytes, WRAPPING_KEY_LENGTH, "wrapping key");
  const iv = draw(randomBytes, AES_GCM_IV_LENGTH, "wrapping IV");
  try {
    const sealed = aesGcmEncrypt(wrappingKey, iv, ledgerSecret, WRAP_AAD);
    const encryptedLedgerSecret = new Uint8Array(iv.length + sealed.length);
    encryptedLedgerSecret.set(iv, 0);
    encryptedLedgerSecret.set(sealed, iv.length);

    const split = await splitSecret(wrappingKey, parsed.length, threshold, randomBytes);
    const shares: Record<string, string> = {};
    const commitments: Record<string, string> = {};
    parsed.forEach(({ id, key }, i) => {
      const share = split[i] as Uint8Array;
      shares[id] = toBase64(rsaOaepEncrypt(key, share, draw(randomBytes, OAEP_SEED_LENGTH, "OAEP seed")));
      commitments[id] = shareCommitment(id, share);
      share.fill(0);
    });
    return { threshold, encryptedLedgerSecret: toBase64(encryptedLedgerSecret), shares, commitments };
  } finally {
    wrappingKey.fill(0);
  }
}

/**
 * What a recovery member does on their own machine: opens their encrypted share (base64, as
 * served by GET /gov/recovery/encrypted-shares/{memberId}) with their RSA private key. The result
 * is what they submit.
 */
export function decryptShare(encryptedShareB64: string, memberPrivateKeyPem: string): Uint8Array {
  const ciphertext = fromBase64(encryptedShareB64, "encrypted share");
  const share = rsaOaepDecrypt(memberPrivateKeyPem, ciphertext);
  if (share.length !== SHARE_LENGTH) {
    throw new RecoveryError(
      "InvalidShare",
      `the decrypted share is ${share.length} bytes, expected ${SHARE_LENGTH}`,
    );
  }
  return share;
}

function checkRecord(
  value: unknown,
  what: string,
  check: (v: unknown, id: string) => void,
): Record<string, string> {
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw new RecoveryError("InvalidInput", `recovery shares: ${what} must be an object keyed by member id`);
  }
  const out: Record<string, string> = {};
  for (const [id, v] of Object.entries(value)) {
    checkMemberId(id, `recovery shares: ${what}`);
    check(v, id);
    out[id] = v as string;
  }
  return out;
}

/** Validates issued shares read back from the ledger (outside input). */
export function checkIssuedRecoveryShares(value: unknown): IssuedRecoveryShares {
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw new RecoveryError("InvalidInput", "recovery shares must be a JSON object");
  }
  const v = value as Record<string, unknown>;
  const shares = checkRecord(v.shares, "shares", (s, id) => {
    if (fromBase64(s, `recovery shares: share of ${id}`).length === 0) {
      throw new RecoveryError("InvalidInput", `recovery shares: share of ${id} is empty`);
    }
  });
  const commitments = checkRecord(v.commitments, "commitments", (c, id) => {
    if (typeof c !== "string" || !COMMITMENT_PATTERN.test(c)) {
      throw new RecoveryError(
        "InvalidInput",
        `recovery shares: commitment of ${id} must be 64 lowercase hex digits`,
      );
    }
  });
  const ids = Object.keys(shares);
  if (ids.length === 0 || ids.length > MAX_SHARES) {
    throw new RecoveryError(
      "InvalidInput",
      `recovery shares: 1 to ${MAX_SHARES} members expected, got ${ids.length}`,
    );
  }
  if (ids.length !== Object.keys(commitments).length || ids.some((id) => !(id in commitments))) {
    throw new RecoveryError("InvalidInput", "recovery shares: shares and commitments name different members");
  }
  const threshold = v.threshold;
  if (
    typeof threshold !== "number" ||
    !Number.isSafeInteger(threshold) ||
    threshold < 1 ||
    threshold > ids.length
  ) {
    throw new RecoveryError(
      "InvalidInput",
      `recovery shares: threshold must be an integer from 1 to ${ids.length}`,
    );
  }
  const wrapped = fromBase64(v.encryptedLedgerSecret, "recovery shares: encryptedLedgerSecret");
  if (wrapped.length <= AES_GCM_IV_LENGTH + AES_GCM_TAG_LENGTH) {
    throw new RecoveryError("InvalidInput", "recovery shares: encryptedLedgerSecret is too short");
  }
  return { threshold, encryptedLedgerSecret: v.encryptedLedgerSecret as string, shares, commitments };
}

/** Opens the wrapped ledger secret; undefined when the key is wrong or the ciphertext altered. */
export function unwrapLedgerSecret(
  encryptedLedgerSecretB64: string,
  wrappingKey: Uint8Array,
): Uint8Array | undefined {
  const wrapped = fromBase64(encryptedLedgerSecretB64, "encryptedLedgerSecret");
  try {
    return aesGcmDecrypt(
      wrappingKey,
      wrapped.subarray(0, AES_GCM_IV_LENGTH),
      wrapped.subarray(AES_GCM_IV_LENGTH),
      WRAP_AAD,
    );
  } catch {
    return undefined;
  }
}
