// Public face of src/recovery: recovery shares of the ledger secret (DESIGN section 8).
export { fromBase64, toBase64 } from "./base64.ts";
export { RecoveryShareCollector, type ShareSubmission } from "./collector.ts";
export { RecoveryError, type RecoveryErrorCode } from "./errors.ts";
export { MIN_RSA_BITS } from "./oaep.ts";
export type { RandomBytes } from "./random.ts";
export { combineShares, MAX_SHARES, splitSecret } from "./shamir.ts";
export {
  checkIssuedRecoveryShares,
  decryptShare,
  type IssuedRecoveryShares,
  issueRecoveryShares,
  type RecoveryMember,
  SHARE_LENGTH,
  shareCommitment,
  WRAPPING_KEY_LENGTH,
} from "./shares.ts";
