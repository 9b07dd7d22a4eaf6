/**
 * Commit evidence and Merkle leaves. The commit evidence string carries a nonce that only holders
 * of the ledger secret can compute, and it is revealed only for committed transactions, so a
 * primary cannot hand out a convincing receipt for an entry that was later rolled back.
 */
import { createHmac } from "node:crypto";
import { sha256Utf8, transactionLeaf } from "../crypto/index.ts";
import { checkU64 } from "./bytes.ts";
import { LedgerError } from "./errors.ts";
import { SECRET_LENGTH } from "./secrets.ts";

export const DIGEST_LENGTH = 32;

/** `ce:<view>.<seqno>:<64 hex>`, nonce = HMAC-SHA256(secret, "coco-commit-evidence:<view>.<seqno>"). */
export function commitEvidence(secretKey: Uint8Array, view: number, seqno: number): string {
  if (!(secretKey instanceof Uint8Array) || secretKey.length !== SECRET_LENGTH) {
    throw new LedgerError(`commit evidence key must be ${SECRET_LENGTH} bytes`);
  }
  checkU64(view, "view");
  checkU64(seqno, "seqno");
  const txid = `${view}.${seqno}`;
  const nonce = createHmac("sha256", secretKey).update(`coco-commit-evidence:${txid}`).digest("hex");
  return `ce:${txid}:${nonce}`;
}

/** SHA-256 of the UTF-8 commit evidence string: what each entry stores and each leaf hashes. */
export function commitEvidenceDigest(evidence: string): Uint8Array {
  return sha256Utf8(evidence);
}

/** The Merkle leaf: SHA-256(write_set_digest || commit_evidence_digest || claims_digest). */
export function leafOf(
  writeSetDigest: Uint8Array,
  commitEvidenceDigest: Uint8Array,
  claimsDigest: Uint8Array,
): Uint8Array {
  checkDigest(writeSetDigest, "write set digest");
  checkDigest(commitEvidenceDigest, "commit evidence digest");
  checkDigest(claimsDigest, "claims digest");
  return transactionLeaf(writeSetDigest, commitEvidenceDigest, claimsDigest);
}

export function checkDigest(digest: Uint8Array, field: string): void {
  if (!(digest instanceof Uint8Array) || digest.length !== DIGEST_LENGTH) {
    throw new LedgerError(`${field} must be ${DIGEST_LENGTH} bytes`);
  }
}
