import { equalBytes } from "../crypto/index.ts";
import { fromBase64 } from "./base64.ts";
import { RecoveryError } from "./errors.ts";
import { combineShares } from "./shamir.ts";
import {
  checkIssuedRecoveryShares,
  type IssuedRecoveryShares,
  SHARE_LENGTH,
  shareCommitment,
  unwrapLedgerSecret,
} from "./shares.ts";

export interface ShareSubmission {
  /** Distinct members whose share has been accepted so far. */
  submitted: number;
  threshold: number;
  /** Further members needed before recover() can succeed. */
  remaining: number;
  /** True when this member had already submitted this same share (it is counted once). */
  duplicate: boolean;
}

/**
 * Gathers decrypted shares during disaster recovery and, at the threshold, rebuilds the wrapping
 * key and opens the ledger secret.
 *
 * Each share is checked against its member's commitment when submitted, so a wrong or corrupted
 * share is refused at once and the member is named. Because a commitment admits exactly one share
 * per member, submitting again replaces the share with an identical one: it is accepted, reported
 * as a duplicate and counted once, which makes client retries harmless.
 */
export class RecoveryShareCollector {
  readonly #issued: IssuedRecoveryShares;
  readonly #shares = new Map<string, Uint8Array>();

  /** `issued` is validated: it comes back from the ledger. */
  constructor(issued: unknown) {
    this.#issued = checkIssuedRecoveryShares(issued);
  }

  get threshold(): number {
    return this.#issued.threshold;
  }

  get submitted(): number {
    return this.#shares.size;
  }

  get remaining(): number {
    return Math.max(0, this.threshold - this.#shares.size);
  }

  /** Members whose shares are in, sorted. */
  submittedMembers(): string[] {
    return [...this.#shares.keys()].sort();
  }

  /** Accepts one member's decrypted share (bytes, or base64 as sent in a request body). */
  submit(memberId: string, share: Uint8Array | string): ShareSubmission {
    const commitment = typeof memberId === "string" ? this.#issued.commitments[memberId] : undefined;
    if (commitment === undefined || !Object.hasOwn(this.#issued.commitments, memberId)) {
      throw new RecoveryError("NotARecoveryMember", `member ${String(memberId)} holds no recovery share`);
    }
    const bytes = typeof share === "string" ? fromBase64(share, `share of member ${memberId}`) : share;
    if (!(bytes instanceof Uint8Array) || bytes.length !== SHARE_LENGTH) {
      throw new RecoveryError(
        "InvalidShare",
        `the share of member ${memberId} must be ${SHARE_LENGTH} bytes, got ${bytes instanceof Uint8Array ? bytes.length : typeof bytes}`,
      );
    }
    if (shareCommitment(memberId, bytes) !== commitment) {
      throw new RecoveryError(
        "ShareMismatch",
        `the share submitted for member ${memberId} is not the share issued to that member`,
      );
    }
    const previous = this.#shares.get(memberId);
    const duplicate = previous !== undefined && equalBytes(previous, bytes);
    previous?.fill(0);
    this.#shares.set(memberId, Uint8Array.from(bytes));
    return { submitted: this.submitted, threshold: this.threshold, remaining: this.remaining, duplicate };
  }

  /**
   * The ledger secret, once `threshold` members have submitted. Throws NotEnoughShares before that,
   * and RecoveryFailed when the shares do not rebuild the key that wrapped the secret (which, with
   * every share checked against its commitment, means the stored wrapped secret was altered).
   */
  async recover(): Promise<Uint8Array> {
    if (this.remaining > 0) {
      throw new RecoveryError(
        "NotEnoughShares",
        `${this.submitted} of ${this.threshold} recovery shares submitted; ${this.remaining} more needed`,
      );
    }
    const chosen = this.submittedMembers()
      .slice(0, this.threshold)
      .map((id) => this.#shares.get(id) as Uint8Array);
    const wrappingKey = await combineShares(chosen);
    try {
      const secret = unwrapLedgerSecret(this.#issued.encryptedLedgerSecret, wrappingKey);
      if (secret === undefined) {
        throw new RecoveryError(
          "RecoveryFailed",
          "the submitted shares do not reconstruct the key that wrapped the ledger secret, or the wrapped secret was altered",
        );
      }
      return secret;
    } finally {
      wrappingKey.fill(0);
    }
  }

  /** Forgets (and zeroes) every submitted share, e.g. when recovery is abandoned. */
  clear(): void {
    for (const share of this.#shares.values()) share.fill(0);
    this.#shares.clear();
  }
}
