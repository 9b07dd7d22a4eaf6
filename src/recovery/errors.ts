export type RecoveryErrorCode =
  | "InvalidInput"
  | "InvalidShare"
  | "NotARecoveryMember"
  | "ShareMismatch"
  | "NotEnoughShares"
  | "DecryptFailed"
  | "RecoveryFailed";

/**
 * Every refusal in src/recovery. `code` is stable; `message` says what is wrong and where, and never
 * carries key or share bytes.
 */
export class RecoveryError extends Error {
  override name = "RecoveryError";
  constructor(
    readonly code: RecoveryErrorCode,
    message: string,
  ) {
    super(message);
  }
}
