import { createPrivateKey, createPublicKey, type KeyObject, X509Certificate } from "node:crypto";
import {
  COSE_HEADER_ALG,
  COSE_HEADER_KID,
  CoseError,
  type CoseHeader,
  type CoseSign1Parts,
  certFingerprint,
  coseAlgForKey,
  coseCborEncode,
  coseDecodeSign1,
  coseSign1,
  coseVerifySign1,
  equalBytes,
  sha256,
  toHex,
} from "../crypto/index.ts";
import type { ReplayGuard } from "./replay.ts";

/**
 * Signed governance requests: a COSE_Sign1 whose protected header names the member (`kid`), what
 * the request is (`ccf.gov.msg.type`), when it was made (`ccf.gov.msg.created_at`) and, for
 * ballots and withdrawals, which proposal it is about (`ccf.gov.msg.proposal_id`). The payload is
 * the request body. The encoding is CCF's, so requests made with CCF's tools are accepted here.
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

/** ECDSA only, as CCF accepts for members: ES256, ES384, ES512. */
const GOV_ALGORITHMS = new Set([-7, -35, -36]);
const COSE_SIGN1_TAG_BYTE = 0xd2; // major type 6, tag 18
const CBOR_ARRAY_OF_FOUR = 0x84;
const MEMBER_ID_PATTERN = /^[0-9a-f]{64}$/;

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

function checkCreatedAt(value: unknown, where: string, code: GovRequestErrorCode): number {
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

// ---------------------------------------------------------------- verification

export interface VerifyGovRequestOptions {
  expectedType: GovMessageType;
  /** When set, the request must name exactly this proposal (the id in the URL). */
  expectedProposalId?: string;
  /** When set, the signer must be this member (the id in the URL). */
  expectedMemberId?: string;
  /** The certificate PEM of the member whose id is `kid`, or undefined for no such member. */
  lookupMemberCert(kid: string): string | undefined;
  /** The verifier's clock, in seconds since the epoch. */
  now: number;
  /** How far before `now` created_at may be. Default DEFAULT_MAX_PAST_SECONDS. */
  maxPastSeconds?: number;
  /** How far after `now` created_at may be. Default DEFAULT_MAX_FUTURE_SECONDS. */
  maxFutureSeconds?: number;
  /**
   * When given, a request it has seen is refused as a Replay, and an accepted request is recorded
   * in the signer's window. Only requests that pass every other check are recorded, so forgeries
   * cannot fill it.
   */
  replayGuard?: ReplayGuard;
}

export interface VerifiedGovRequest {
  /** Hex SHA-256 of the signer's certificate DER: the kid. */
  memberId: string;
  type: GovMessageType;
  createdAt: number;
  proposalId?: string;
  payload: Uint8Array;
  /** Hex SHA-256 of the COSE signature bytes: what CCF calls the request digest (proposal ids, history). */
  coseDigest: string;
  /**
   * Hex SHA-256 of the signed content (COSE Sig_structure). ECDSA signatures are malleable, so
   * anyone can turn one valid signature into another over the same content; replays are
   * therefore recognised by this digest, never by the signature's.
   */
  replayDigest: string;
}

function invalid(message: string): GovRequestError {
  return new GovRequestError("InvalidCose", message);
}

/** Tagged bytes for the strict decoder: CCF sends tag 18; an untagged COSE_Sign1 array is accepted too. */
function withTag(bytes: Uint8Array): Uint8Array {
  if (bytes[0] === COSE_SIGN1_TAG_BYTE) return bytes;
  if (bytes[0] !== CBOR_ARRAY_OF_FOUR) {
    throw invalid("not a COSE_Sign1: expected CBOR tag 18 or a 4-item array");
  }
  const tagged = new Uint8Array(bytes.length + 1);
  tagged[0] = COSE_SIGN1_TAG_BYTE;
  tagged.set(bytes, 1);
  return tagged;
}

interface GovHeader {
  memberId: string;
  type: string;
  createdAt: number;
  proposalId?: string;
}

function readKid(value: unknown): string {
  let text: string;
  if (value instanceof Uint8Array) {
    text = Buffer.from(value.buffer, value.byteOffset, value.byteLength).toString("latin1");
  } else if (typeof value === "string") {
    text = value;
  } else {
    throw invalid("protected header must carry kid (label 4): the member id as hex");
  }
  if (!MEMBER_ID_PATTERN.test(text)) {
    throw invalid("kid (label 4) must be 64 lowercase hex digits: the SHA-256 of the member certificate");
  }
  return text;
}

function readGovHeader(parts: CoseSign1Parts): GovHeader {
  const header = parts.protectedHeader;
  const alg = header.get(COSE_HEADER_ALG);
  if (typeof alg !== "number" || !GOV_ALGORITHMS.has(alg)) {
    throw invalid(
      `unsupported alg ${String(alg)}: governance requests use ES256 (-7), ES384 (-35) or ES512 (-36)`,
    );
  }
  const memberId = readKid(header.get(COSE_HEADER_KID));
  const type = header.get(GOV_MSG_TYPE);
  if (typeof type !== "string") throw invalid(`protected header must carry ${GOV_MSG_TYPE} as text`);
  if (!header.has(GOV_MSG_CREATED_AT)) throw invalid(`protected header must carry ${GOV_MSG_CREATED_AT}`);
  const createdAt = checkCreatedAt(header.get(GOV_MSG_CREATED_AT), GOV_MSG_CREATED_AT, "InvalidCose");
  const proposalId = header.get(GOV_MSG_PROPOSAL_ID);
  if (proposalId !== undefined && (typeof proposalId !== "string" || proposalId.length === 0)) {
    throw invalid(`${GOV_MSG_PROPOSAL_ID} must be non-empty text`);
  }
  if (proposalId === undefined && (GOV_TYPES_WITH_PROPOSAL_ID as readonly string[]).includes(type)) {
    throw invalid(`a ${type} must carry ${GOV_MSG_PROPOSAL_ID} in its protected header`);
  }
  return proposalId === undefined ? { memberId, type, createdAt } : { memberId, type, createdAt, proposalId };
}

function checkClock(
  now: unknown,
  past: unknown,
  future: unknown,
): { now: number; past: number; future: number } {
  if (typeof now !== "number" || !Number.isFinite(now) || now < 0) {
    throw new GovRequestError("InvalidInput", "now must be a non-negative number of seconds");
  }
  for (const [name, value] of [
    ["maxPastSeconds", past],
    ["maxFutureSeconds", future],
  ] as const) {
    if (typeof value !== "number" || !Number.isFinite(value) || value < 0) {
      throw new GovRequestError("InvalidInput", `${name} must be a non-negative number`);
    }
  }
  return { now, past: past as number, future: future as number };
}

/** Validity dates by certificate PEM: members' certificates are few and parsed once. */
const validityCache = new Map<string, { notBefore: number; notAfter: number }>();
const VALIDITY_CACHE_SIZE = 256;

function validityOf(certPem: string): { notBefore: number; notAfter: number } {
  let dates = validityCache.get(certPem);
  if (!dates) {
    const cert = new X509Certificate(certPem);
    dates = { notBefore: Date.parse(cert.validFrom), notAfter: Date.parse(cert.validTo) };
    if (validityCache.size >= VALIDITY_CACHE_SIZE) validityCache.clear();
    validityCache.set(certPem, dates);
  }
  return dates;
}

/**
 * The member's certificate must be valid both when the node receives the request and at the
 * request's created_at: an expired certificate signs nothing, and a request cannot be dated
 * before its certificate existed.
 */
function checkCertificateDates(
  memberId: string,
  certPem: string,
  nowSeconds: number,
  createdAt: number,
): void {
  const { notBefore, notAfter } = validityOf(certPem);
  for (const [at, what] of [
    [nowSeconds * 1000, "now"],
    [createdAt * 1000, `at the request's ${GOV_MSG_CREATED_AT} ${createdAt}`],
  ] as const) {
    if (at > notAfter) {
      throw new GovRequestError(
        "CertificateExpired",
        `certificate expired/not yet valid: member ${memberId}'s certificate expired at ${new Date(notAfter).toISOString()} (checked ${what})`,
      );
    }
    if (at < notBefore) {
      throw new GovRequestError(
        "CertificateNotYetValid",
        `certificate expired/not yet valid: member ${memberId}'s certificate is not valid before ${new Date(notBefore).toISOString()} (checked ${what})`,
      );
    }
  }
}

/**
 * Checks a signed governance request and says who sent what. Throws GovRequestError; the checks
 * run in this order: COSE structure and headers (InvalidCose), signer known (UnknownKid), signature
 * (BadSignature), type, proposal id and member against what the endpoint expects, created_at
 * against the clock (Stale, FutureCreatedAt), the certificate's validity dates at the node's time
 * and at created_at (CertificateExpired, CertificateNotYetValid), and last the replay guard
 * (Replay, or Stale before the signer's window).
 */
export function verifyGovRequest(bytes: Uint8Array, opts: VerifyGovRequestOptions): VerifiedGovRequest {
  const { now, past, future } = checkClock(
    opts.now,
    opts.maxPastSeconds ?? DEFAULT_MAX_PAST_SECONDS,
    opts.maxFutureSeconds ?? DEFAULT_MAX_FUTURE_SECONDS,
  );
  if (!isGovMessageType(opts.expectedType)) {
    throw new GovRequestError("InvalidInput", `unknown expectedType ${JSON.stringify(opts.expectedType)}`);
  }
  if (!(bytes instanceof Uint8Array) || bytes.length === 0)
    throw invalid("request body must be non-empty bytes");

  const tagged = withTag(bytes);
  let parts: CoseSign1Parts;
  try {
    parts = coseDecodeSign1(tagged);
  } catch (err) {
    if (err instanceof CoseError) throw invalid(err.message);
    throw err;
  }
  const header = readGovHeader(parts);
  const payload = parts.payload;
  if (payload === null)
    throw invalid("governance requests carry their payload; a detached payload is refused");

  const certPem = opts.lookupMemberCert(header.memberId);
  if (certPem === undefined) {
    throw new GovRequestError("UnknownKid", `no member has id ${header.memberId} (kid)`);
  }
  let storedId: string;
  try {
    storedId = certFingerprint(certPem);
  } catch (err) {
    throw new GovRequestError(
      "UnknownKid",
      `the certificate stored for member ${header.memberId} is unreadable: ${(err as Error).message}`,
    );
  }
  if (storedId !== header.memberId) {
    throw new GovRequestError(
      "UnknownKid",
      `the certificate stored for member ${header.memberId} has a different fingerprint (${storedId})`,
    );
  }
  let valid: boolean;
  try {
    valid = coseVerifySign1(tagged, certPem);
  } catch (err) {
    throw invalid((err as Error).message);
  }
  if (!valid) {
    throw new GovRequestError(
      "BadSignature",
      `the signature does not verify with the certificate of member ${header.memberId}`,
    );
  }

  if (header.type !== opts.expectedType) {
    throw new GovRequestError(
      "WrongMessageType",
      `${GOV_MSG_TYPE} is ${JSON.stringify(header.type)}, this endpoint expects ${JSON.stringify(opts.expectedType)}`,
    );
  }
  if (opts.expectedProposalId !== undefined && header.proposalId !== opts.expectedProposalId) {
    throw new GovRequestError(
      "ProposalIdMismatch",
      `${GOV_MSG_PROPOSAL_ID} is ${JSON.stringify(header.proposalId ?? null)}, the request is for proposal ${JSON.stringify(opts.expectedProposalId)}`,
    );
  }
  if (opts.expectedMemberId !== undefined && header.memberId !== opts.expectedMemberId) {
    throw new GovRequestError(
      "MemberMismatch",
      `signed by member ${header.memberId}, but the request is on behalf of member ${opts.expectedMemberId}`,
    );
  }
  if (header.createdAt < now - past) {
    throw new GovRequestError(
      "Stale",
      `${GOV_MSG_CREATED_AT} ${header.createdAt} is more than ${past} s before the node's time ${Math.floor(now)}`,
    );
  }
  if (header.createdAt > now + future) {
    throw new GovRequestError(
      "FutureCreatedAt",
      `${GOV_MSG_CREATED_AT} ${header.createdAt} is more than ${future} s after the node's time ${Math.floor(now)}`,
    );
  }
  checkCertificateDates(header.memberId, certPem, now, header.createdAt);

  const signedContent = coseCborEncode(["Signature1", parts.protectedBytes, new Uint8Array(0), payload]);
  const replayDigest = toHex(sha256(signedContent));
  opts.replayGuard?.add(
    header.memberId,
    { digest: replayDigest, createdAt: header.createdAt, type: header.type },
    Math.floor(now),
  );

  const result: VerifiedGovRequest = {
    memberId: header.memberId,
    type: header.type as GovMessageType,
    createdAt: header.createdAt,
    payload,
    coseDigest: toHex(sha256(parts.signature)),
    replayDigest,
  };
  if (header.proposalId !== undefined) result.proposalId = header.proposalId;
  return result;
}
