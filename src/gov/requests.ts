import { fromHex } from "../crypto/index.ts";
import type { Tx } from "../kv/index.ts";
import {
  fromUtf8,
  Tables as GovTables,
  readJson,
  SINGLETON_KEY as SINGLETON,
  utf8,
  writeJson,
} from "../ledger/index.ts";
import { GovError } from "./proposals.ts";
import {
  type GovMessageType,
  GovRequestError,
  type VerifiedGovRequest,
  verifyGovRequest,
} from "./signed-request.ts";

/** How many recent signed requests the service remembers to refuse replays (as CCF's default). */
export const RECENT_REQUESTS = 100;

const STATUS_OF: Record<string, number> = {
  UnknownKid: 401,
  BadSignature: 401,
  InvalidCose: 400,
  InvalidInput: 400,
  WrongMessageType: 400,
  ProposalIdMismatch: 400,
  MemberMismatch: 403,
  Stale: 400,
  FutureCreatedAt: 400,
  Replay: 400,
};

/**
 * Checks a member's signed request against the member certificates in `tx`, refuses replays with
 * the recent-requests table, and records the request in `public:ccf.gov.history` (the ledger
 * keeps every version, so every signed request stays auditable).
 */
export function acceptSignedRequest(
  tx: Tx,
  bytes: Uint8Array,
  expect: { type: GovMessageType; proposalId?: string; memberId?: string; nowSeconds: number },
): VerifiedGovRequest {
  let verified: VerifiedGovRequest;
  try {
    verified = verifyGovRequest(bytes, {
      expectedType: expect.type,
      ...(expect.proposalId !== undefined ? { expectedProposalId: expect.proposalId } : {}),
      ...(expect.memberId !== undefined ? { expectedMemberId: expect.memberId } : {}),
      lookupMemberCert: (kid) => {
        const cert = tx.map(GovTables.membersCerts).get(utf8(kid));
        return cert ? fromUtf8(cert) : undefined;
      },
      now: expect.nowSeconds,
    });
  } catch (e) {
    if (e instanceof GovRequestError) throw new GovError(STATUS_OF[e.code] ?? 400, e.code, e.message);
    throw e;
  }
  refuseReplay(tx, verified);
  tx.map(GovTables.history).set(utf8(verified.memberId), bytes);
  return verified;
}

function refuseReplay(tx: Tx, request: VerifiedGovRequest): void {
  const recent = tx.map(GovTables.recentRequests);
  const { entries } = recent.range({ limit: RECENT_REQUESTS + 10 });
  const keys = entries.map(([key]) => fromUtf8(key));
  if (keys.some((key) => key.endsWith(`:${request.replayDigest}`))) {
    throw new GovError(400, "Replay", "this signed request was already received: sign a new one");
  }
  const created = String(request.createdAt).padStart(10, "0");
  // Keys sort by created_at: once the window is full, nothing older than its oldest is accepted.
  if (keys.length >= RECENT_REQUESTS && `${created}:` < keys[0]!) {
    throw new GovError(400, "Stale", "the request is older than every recent request: sign a new one");
  }
  recent.set(utf8(`${created}:${request.replayDigest}`), new Uint8Array(0));
  for (const key of keys.slice(0, Math.max(0, keys.length + 1 - RECENT_REQUESTS))) recent.delete(utf8(key));
}

/** `state-digests/{memberId}:update`: the digest a member must acknowledge (the last signed root). */
export function updateStateDigest(tx: Tx, memberId: string): { memberId: string; stateDigest: string } {
  requireMember(tx, memberId);
  const root = readJson<{ root?: string }>(tx, GovTables.signatures, SINGLETON)?.root;
  if (!root) throw new GovError(503, "ServiceNotReady", "the service has not signed its state yet");
  writeJson(tx, GovTables.membersAcks, utf8(memberId), { state_digest: root });
  return { memberId, stateDigest: root };
}

export function getStateDigest(tx: Tx, memberId: string): { memberId: string; stateDigest: string } {
  requireMember(tx, memberId);
  const ack = readJson<{ state_digest?: string }>(tx, GovTables.membersAcks, utf8(memberId));
  if (!ack?.state_digest)
    throw new GovError(404, "StateDigestNotFound", `no state digest for member ${memberId}: update it first`);
  return { memberId, stateDigest: ack.state_digest };
}

/** `state-digests/{memberId}:ack`: the member signed the digest; an Accepted member becomes Active. */
export function ackStateDigest(tx: Tx, memberId: string, body: Uint8Array): void {
  const info = requireMember(tx, memberId);
  const expected = getStateDigest(tx, memberId).stateDigest;
  let digest: unknown;
  try {
    digest = (JSON.parse(fromUtf8(body)) as { stateDigest?: unknown }).stateDigest;
  } catch (e) {
    throw new GovError(400, "InvalidInput", `an ack is {"stateDigest": "<hex>"}: ${(e as Error).message}`);
  }
  if (typeof digest !== "string" || !/^[0-9a-f]{64}$/.test(digest) || fromHex(digest).length !== 32) {
    throw new GovError(400, "InvalidInput", "stateDigest must be 64 lower-case hex digits");
  }
  if (digest !== expected) {
    throw new GovError(
      400,
      "StateDigestMismatch",
      "the acknowledged digest is not the member's current state digest",
    );
  }
  if (info.status === "Accepted")
    writeJson(tx, GovTables.membersInfo, utf8(memberId), { ...info, status: "Active" });
}

function requireMember(tx: Tx, memberId: string): { status?: string } {
  const info = readJson<{ status?: string }>(tx, GovTables.membersInfo, utf8(memberId));
  if (!info) throw new GovError(404, "MemberNotFound", `no member ${memberId}`);
  return info;
}
