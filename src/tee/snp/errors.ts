/** What went wrong, as a stable code a caller can branch on. */
export type SnpErrorCode =
  | "bad-size"
  | "unsupported-version"
  | "unsupported-signature-algorithm"
  | "bad-der"
  | "bad-certificate"
  | "bad-chain"
  | "bad-crl"
  | "bad-input"
  | "unknown-product"
  | "acquire-failed"
  | "endorsements-failed";

/** Any SEV-SNP input that Coco refuses: the message says what is wrong and where. */
export class SnpError extends Error {
  override readonly name = "SnpError";
  constructor(
    readonly code: SnpErrorCode,
    message: string,
  ) {
    super(message);
  }
}
