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
import {
  DEFAULT_REPLAY_MAX_ENTRIES,
  MAX_REPLAY_MAX_ENTRIES,
  MemberReplayWindow,
  type WindowEntry,
  type WindowLimits,
} from "./replay.ts";
import { GovError } from "./request-error.ts";
import {
  DEFAULT_MAX_FUTURE_SECONDS,
  DEFAULT_MAX_PAST_SECONDS,
  type GovMessageType,
  GovRequestError,
} from "./signed-request.ts";
import { type VerifiedGovRequest, verifyGovRequest } from "./verify-request.ts";

/**
 * A member that is not Active may update its state digest once in this many seconds: it can
 * write nothing else, and each update is a ledger entry.
 */
export const STATE_DIGEST_UPDATE_INTERVAL_SECONDS = 10;

const STATUS_OF: Record<string, number> = {
  UnknownKid: 401,
  BadSignature: 401,
  CertificateExpired: 401,
  CertificateNotYetValid: 401,
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
 * the member's replay window, and records the request in `public:ccf.gov.history` (the ledger
 * keeps every version, so every signed request stays auditable). `nowSeconds` is the primary's
 * clock from the injected environment; backups replay the resulting writes, never re-decide.
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
  const window = loadWindow(tx, verified.memberId);
  const now = Math.floor(expect.nowSeconds);
  if (verified.type === "state_digest") limitStateDigestUpdates(tx, verified.memberId, window, now);
  try {
    const change = window.admit(
      { digest: verified.replayDigest, createdAt: verified.createdAt, type: verified.type },
      now,
      windowLimits(tx),
    );
    storeChange(tx, verified.memberId, change.added, change.forgotten, change.horizon);
  } catch (e) {
    if (e instanceof GovRequestError) {
      const hint =
        e.code === "Replay" ? "this signed request was already received: sign a new one" : e.message;
      throw new GovError(400, e.code, hint);
    }
    throw e;
  }
  tx.map(GovTables.history).set(utf8(verified.memberId), bytes);
  return verified;
}

// Keys of public:ccf.gov.members.recent_requests: `<memberId>` holds {"horizon"}; each entry is
// `<memberId>:<arrival, 12 digits>:<digest>` holding {"created_at", "type"}, so a member's
// entries are one key range, in arrival order.
const entryKey = (memberId: string, e: WindowEntry): string =>
  `${memberId}:${String(e.arrival).padStart(12, "0")}:${e.digest}`;

function loadWindow(tx: Tx, memberId: string): MemberReplayWindow {
  const map = tx.map(GovTables.membersRecentRequests);
  const horizon = readJson<{ horizon?: number }>(
    tx,
    GovTables.membersRecentRequests,
    utf8(memberId),
  )?.horizon;
  const { entries } = map.range({
    start: utf8(`${memberId}:`),
    end: utf8(`${memberId};`),
    limit: MAX_REPLAY_MAX_ENTRIES, // a window never holds more (admit evicts down to the cap)
  });
  const window: WindowEntry[] = entries.map(([key, value]) => {
    const [, arrival, digest] = fromUtf8(key).split(":");
    const v = JSON.parse(fromUtf8(value)) as { created_at: number; type: string };
    return { digest: digest!, arrival: Number(arrival), createdAt: v.created_at, type: v.type };
  });
  return new MemberReplayWindow(horizon ?? 0, window);
}

function storeChange(
  tx: Tx,
  memberId: string,
  added: WindowEntry,
  forgotten: WindowEntry[],
  horizon: number | undefined,
): void {
  const map = tx.map(GovTables.membersRecentRequests);
  for (const e of forgotten) map.delete(utf8(entryKey(memberId, e)));
  if (!forgotten.includes(added)) {
    writeJson(tx, GovTables.membersRecentRequests, utf8(entryKey(memberId, added)), {
      created_at: added.createdAt,
      type: added.type,
    });
  }
  if (horizon !== undefined) writeJson(tx, GovTables.membersRecentRequests, utf8(memberId), { horizon });
}

/**
 * Entries live for the whole clock allowance; each member keeps at most CCF's
 * `recent_cose_proposals_window_size` (service configuration; default 100) of them.
 */
function windowLimits(tx: Tx): WindowLimits {
  const config = readJson<{ recent_cose_proposals_window_size?: unknown }>(
    tx,
    GovTables.serviceConfig,
    SINGLETON,
  );
  const size = config?.recent_cose_proposals_window_size;
  const maxEntries =
    typeof size === "number" && Number.isSafeInteger(size) && size >= 1
      ? Math.min(size, MAX_REPLAY_MAX_ENTRIES)
      : DEFAULT_REPLAY_MAX_ENTRIES;
  return { keepSeconds: DEFAULT_MAX_PAST_SECONDS + DEFAULT_MAX_FUTURE_SECONDS, maxEntries };
}

/** A member that is not Active gets one state-digest update per interval (429 otherwise). */
function limitStateDigestUpdates(tx: Tx, memberId: string, window: MemberReplayWindow, now: number): void {
  const status = readJson<{ status?: string }>(tx, GovTables.membersInfo, utf8(memberId))?.status;
  if (status === "Active") return;
  const recent = window.recent("state_digest", now - STATE_DIGEST_UPDATE_INTERVAL_SECONDS + 1);
  if (recent.length === 0) return;
  const last = Math.max(...recent.map((e) => e.arrival));
  const wait = Math.max(1, last + STATE_DIGEST_UPDATE_INTERVAL_SECONDS - now);
  throw new GovError(
    429,
    "TooManyRequests",
    `member ${memberId} is not Active: one state digest update per ${STATE_DIGEST_UPDATE_INTERVAL_SECONDS} s; retry in ${wait} s`,
    wait,
  );
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
