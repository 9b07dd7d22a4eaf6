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
