import { createPrivateKey, createPublicKey, type KeyObject, X509Certificate } from "node:crypto";
import {
  COSE_HEADER_ALG,
  COSE_HEADER_KID,
  type CoseHeader,
  certFingerprint,
  coseAlgForKey,
  coseSign1,
  equalBytes,
} from "../crypto/index.ts";
import { GovRequestError, type GovRequestErrorCode } from "./request-error.ts";

export { GovRequestError, type GovRequestErrorCode };

/**
 * Signed governance requests: a COSE_Sign1 whose protected header names the member (`kid`), what
 * the request is (`ccf.gov.msg.type`), when it was made (`ccf.gov.msg.created_at`) and, for
 * ballots and withdrawals, which proposal it is about (`ccf.gov.msg.proposal_id`). The payload is
 * the request body. The encoding is CCF's, so requests made with CCF's tools are accepted here.
 * This file is the format and signing (what the client library needs); a node verifies requests
 * with verify-request.ts.
 */

export const GOV_MSG_TYPE = "ccf.gov.msg.type";
export const GOV_MSG_CREATED_AT = "ccf.gov.msg.created_at";
export const GOV_MSG_PROPOSAL_ID = "ccf.gov.msg.proposal_id";

export const GOV_MESSAGE_TYPES = [
  "proposal",
  "ballot",
  "withdrawal",
  "ack",
  "state_digest",
  "recovery_share",
  "encrypted_recovery_share",
] as const;
export type GovMessageType = (typeof GOV_MESSAGE_TYPES)[number];

/** Message types that act on one proposal, so must name it. */
export const GOV_TYPES_WITH_PROPOSAL_ID: readonly GovMessageType[] = ["ballot", "withdrawal"];

/** How far before the verifier's clock created_at may be (a request signed, then sent later). */
export const DEFAULT_MAX_PAST_SECONDS = 600;
/**
 * How far after the verifier's clock created_at may be: clock skew only. Kept small, since a
 * request dated ahead stays valid (and in the replay window) for that much longer.
 */
export const DEFAULT_MAX_FUTURE_SECONDS = 30;

export function isGovMessageType(value: unknown): value is GovMessageType {
  return typeof value === "string" && (GOV_MESSAGE_TYPES as readonly string[]).includes(value);
}

// ---------------------------------------------------------------- signing

export interface SignGovRequestInput {
  /** The member's EC private key (PEM). */
  keyPem: string;
  /** The member's certificate (PEM); its SHA-256 fingerprint becomes `kid`. */
  certPem: string;
  type: GovMessageType;
  /** Seconds since the Unix epoch. */
  createdAt: number;
  /** Required for ballots and withdrawals. */
  proposalId?: string;
  /** The request body; empty for a withdrawal. */
  payload: Uint8Array;
}

/** created_at as the request carries it: whole seconds since the epoch. */
export function checkCreatedAt(value: unknown, where: string, code: GovRequestErrorCode): number {
  if (typeof value !== "number" || !Number.isSafeInteger(value) || value < 0) {
    throw new GovRequestError(code, `${where} must be a non-negative integer (seconds since the epoch)`);
  }
  return value;
}

function spkiOf(key: KeyObject): Uint8Array {
  return new Uint8Array(key.export({ type: "spki", format: "der" }));
}

/** Signs a governance request as CCF's `ccf_cose_sign1` would: tagged COSE_Sign1, kid as bstr. */
export function signGovRequest(input: SignGovRequestInput): Uint8Array {
  const { keyPem, certPem, type, proposalId, payload } = input;
  if (!isGovMessageType(type)) {
    throw new GovRequestError(
      "InvalidInput",
      `unknown message type ${JSON.stringify(type)}: expected one of ${GOV_MESSAGE_TYPES.join(", ")}`,
    );
  }
  const createdAt = checkCreatedAt(input.createdAt, "createdAt", "InvalidInput");
  if (proposalId !== undefined && (typeof proposalId !== "string" || proposalId.length === 0)) {
    throw new GovRequestError("InvalidInput", "proposalId must be a non-empty string");
  }
  if (proposalId === undefined && GOV_TYPES_WITH_PROPOSAL_ID.includes(type)) {
    throw new GovRequestError("InvalidInput", `a ${type} must name its proposal (proposalId)`);
  }
  if (!(payload instanceof Uint8Array)) throw new GovRequestError("InvalidInput", "payload must be bytes");

  let key: KeyObject;
  try {
    key = createPrivateKey(keyPem);
  } catch (err) {
    throw new GovRequestError("InvalidInput", `keyPem is not a PEM private key: ${(err as Error).message}`);
  }
  const alg = coseAlgForKey(key);
  if (alg === undefined) {
    throw new GovRequestError("InvalidInput", "member signing keys must be EC keys on P-256, P-384 or P-521");
  }
  let kid: string;
  let certKey: KeyObject;
  try {
    kid = certFingerprint(certPem);
    certKey = new X509Certificate(certPem).publicKey;
  } catch (err) {
    throw new GovRequestError("InvalidInput", `certPem: ${(err as Error).message}`);
  }
  // A request signed with a key other than the certificate's would be refused by every node.
  if (!equalBytes(spkiOf(createPublicKey(key)), spkiOf(certKey))) {
    throw new GovRequestError("InvalidInput", "keyPem is not the private key of the certificate in certPem");
  }

  // Deterministic order (RFC 8949 section 4.2.1: bytewise order of the encoded labels), the order
  // CCF's Python client sorts its header into: alg, kid, then the text labels by encoded length.
  const header: CoseHeader = new Map<number | string, unknown>([
    [COSE_HEADER_ALG, alg],
    // CCF reads kid as a byte string holding the ASCII hex fingerprint.
    [COSE_HEADER_KID, new TextEncoder().encode(kid)],
    [GOV_MSG_TYPE, type],
    [GOV_MSG_CREATED_AT, createdAt],
  ]);
  if (proposalId !== undefined) header.set(GOV_MSG_PROPOSAL_ID, proposalId);
  return coseSign1({ protectedHeader: header, payload, privateKeyPem: key });
}
