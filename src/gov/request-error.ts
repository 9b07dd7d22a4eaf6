export type GovRequestErrorCode =
  | "InvalidInput"
  | "InvalidCose"
  | "UnknownKid"
  | "BadSignature"
  | "WrongMessageType"
  | "ProposalIdMismatch"
  | "MemberMismatch"
  | "Stale"
  | "FutureCreatedAt"
  | "CertificateExpired"
  | "CertificateNotYetValid"
  | "Replay";

/** Why a governance request was refused; `code` is stable, `message` says what and where. */
export class GovRequestError extends Error {
  override name = "GovRequestError";
  constructor(
    readonly code: GovRequestErrorCode,
    message: string,
  ) {
    super(message);
  }
}

/**
 * A governance request that cannot be carried out: HTTP status, CCF-style code, message, and for
 * a rate limit, when to try again.
 */
export class GovError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly retryAfterSeconds?: number,
  ) {
    super(message);
  }
}
