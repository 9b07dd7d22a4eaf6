import { X509Certificate } from "node:crypto";
import {
  COSE_HEADER_ALG,
  COSE_HEADER_KID,
  CoseError,
  type CoseSign1Parts,
  certFingerprint,
  coseCborEncode,
  coseDecodeSign1,
  coseVerifySign1,
  sha256,
  toHex,
} from "../crypto/index.ts";
import type { ReplayGuard } from "./replay.ts";
import { GovRequestError } from "./request-error.ts";
import {
  checkCreatedAt,
  DEFAULT_MAX_FUTURE_SECONDS,
  DEFAULT_MAX_PAST_SECONDS,
  GOV_MSG_CREATED_AT,
  GOV_MSG_PROPOSAL_ID,
  GOV_MSG_TYPE,
  GOV_TYPES_WITH_PROPOSAL_ID,
  type GovMessageType,
  isGovMessageType,
} from "./signed-request.ts";

// Verifying a signed governance request on a node (the format and signing: signed-request.ts).

/** ECDSA only, as CCF accepts for members: ES256, ES384, ES512. */
const GOV_ALGORITHMS = new Set([-7, -35, -36]);
const COSE_SIGN1_TAG_BYTE = 0xd2; // major type 6, tag 18
const CBOR_ARRAY_OF_FOUR = 0x84;
const MEMBER_ID_PATTERN = /^[0-9a-f]{64}$/;

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
