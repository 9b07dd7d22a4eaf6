import { sha256, toHex } from "../crypto/index.ts";
import type { Tx } from "../kv/index.ts";
import {
  Tables as GovTables,
  readJson,
  SINGLETON_KEY as SINGLETON,
  scanMap,
  utf8,
  writeJson,
} from "../ledger/index.ts";
import {
  loadProposal,
  type ProposalInfo,
  type ProposalState,
  type ProposalView,
  requireActiveMember,
  viewOf,
} from "./proposal-records.ts";
import { renewalWindowProblem } from "./renewal-check.ts";
import { GovError } from "./request-error.ts";

/**
 * The constitution's entry points, bound to one transaction by the caller (read-only for
 * validate, resolve and ballots; read-write for apply). Each throws `ConstitutionError` when the
 * script throws or exceeds its limits.
 */
export interface Constitution {
  validate(tx: Tx, proposal: string): { valid: boolean; description?: string };
  vote(tx: Tx, ballot: string, proposal: string, proposerId: string): boolean;
  resolve(
    tx: Tx,
    proposal: string,
    proposerId: string,
    votes: Array<{ member_id: string; vote: boolean }>,
  ): string;
  apply(tx: Tx, proposal: string, proposalId: string): void;
}

/** A script in the constitution or a ballot failed (threw, timed out, ran out of memory). */
export class ConstitutionError extends Error {
  constructor(
    message: string,
    readonly trace?: string,
  ) {
    super(message);
  }
}
/**
 * A proposal's id: SHA-256 over the Merkle root the service last signed and the digest of the
 * member's signed request, so the same proposal made twice, or on another state, gets another id.
 */
function proposalIdFor(tx: Tx, requestDigest: Uint8Array): string {
  const signature = readJson<{ root?: string }>(tx, GovTables.signatures, SINGLETON);
  return toHex(sha256(utf8(signature?.root ?? ""), requestDigest));
}

function parseProposal(body: Uint8Array): string {
  let text: string;
  let parsed: unknown;
  try {
    text = new TextDecoder("utf-8", { fatal: true }).decode(body);
    parsed = JSON.parse(text);
  } catch (e) {
    throw new GovError(400, "ProposalFailedToValidate", `a proposal must be JSON: ${(e as Error).message}`);
  }
  const actions = (parsed as { actions?: unknown } | null)?.actions;
  if (!Array.isArray(actions) || actions.length === 0) {
    throw new GovError(
      400,
      "ProposalFailedToValidate",
      'a proposal is {"actions": [{"name": ..., "args": ...}, ...]} with at least one action',
    );
  }
  return text;
}

/** How many proposals one member may have Open at once, unless the service configuration says. */
export const DEFAULT_MAX_OPEN_PROPOSALS_PER_MEMBER = 10;

/**
 * The cap on a member's Open proposals: `maximum_open_proposals_per_member` in the service
 * configuration (Coco's `set_service_configuration` sets it), else the default.
 */
function maxOpenProposals(tx: Tx): number {
  const config = readJson<{ maximum_open_proposals_per_member?: unknown }>(
    tx,
    GovTables.serviceConfig,
    SINGLETON,
  );
  const value = config?.maximum_open_proposals_per_member;
  return typeof value === "number" && Number.isSafeInteger(value) && value >= 1
    ? value
    : DEFAULT_MAX_OPEN_PROPOSALS_PER_MEMBER;
}

/**
 * One member cannot flood governance with proposals: each Open one is re-resolved on every
 * ballot and listed to every member. Counting scans proposals_info, which is only read here on a
 * proposal's creation (a governance write, rare by nature).
 */
function requireRoomForProposal(tx: Tx, memberId: string): void {
  const max = maxOpenProposals(tx);
  let open = 0;
  for (const [, value] of scanMap(tx, GovTables.proposalsInfo)) {
    const info = JSON.parse(new TextDecoder().decode(value)) as ProposalInfo;
    if (info.state === "Open" && info.proposer_id === memberId) open++;
  }
  if (open >= max) {
    throw new GovError(
      429,
      "TooManyOpenProposals",
      `member ${memberId} already has ${open} open proposals, the most allowed (${max}): withdraw one or wait until one closes`,
    );
  }
}

/** Creates a proposal (validated by the constitution), then resolves it at once. */
export function createProposal(
  tx: Tx,
  constitution: Constitution,
  request: { memberId: string; body: Uint8Array; requestDigest: Uint8Array; createdAt?: number },
): ProposalView {
  requireActiveMember(tx, request.memberId);
  requireRoomForProposal(tx, request.memberId);
  const proposal = parseProposal(request.body);
  let validity: { valid: boolean; description?: string };
  try {
    validity = constitution.validate(tx, proposal);
  } catch (e) {
    throw new GovError(400, "ProposalFailedToValidate", `validate failed: ${(e as Error).message}`);
  }
  if (validity?.valid !== true) {
    throw new GovError(
      400,
      "ProposalFailedToValidate",
      `proposal is not valid: ${validity?.description ?? "(no description)"}`,
    );
  }
  // What CCF's constitution does not check, whichever constitution is in force (renewal-check.ts).
  const renewal =
    request.createdAt === undefined ? undefined : renewalWindowProblem(tx, proposal, request.createdAt);
  if (renewal) throw new GovError(400, "ProposalFailedToValidate", `proposal is not valid: ${renewal}`);
  const proposalId = proposalIdFor(tx, request.requestDigest);
  if (tx.map(GovTables.proposals).has(utf8(proposalId))) {
    throw new GovError(409, "ProposalReplay", `proposal ${proposalId} already exists`);
  }
  tx.map(GovTables.proposals).set(utf8(proposalId), utf8(proposal));
  const info: ProposalInfo = { proposer_id: request.memberId, state: "Open", ballots: {} };
  return settle(tx, constitution, proposalId, proposal, info);
}

export function submitBallot(
  tx: Tx,
  constitution: Constitution,
  request: { memberId: string; proposalId: string; body: Uint8Array },
): ProposalView {
  requireActiveMember(tx, request.memberId);
  const { proposal, info } = loadProposal(tx, request.proposalId);
  if (info.state !== "Open") {
    throw new GovError(400, "ProposalNotOpen", `proposal ${request.proposalId} is ${info.state}, not Open`);
  }
  if (info.ballots[request.memberId] !== undefined) {
    throw new GovError(
      400,
      "VoteAlreadyExists",
      `member ${request.memberId} has already voted on ${request.proposalId}`,
    );
  }
  let ballot: unknown;
  try {
    ballot = (
      JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(request.body)) as { ballot?: unknown }
    ).ballot;
  } catch (e) {
    throw new GovError(400, "InvalidInput", `a ballot must be JSON: ${(e as Error).message}`);
  }
  if (typeof ballot !== "string" || ballot.length === 0) {
    throw new GovError(
      400,
      "InvalidInput",
      'a ballot is {"ballot": "export function vote (proposal, proposerId) { ... }"}',
    );
  }
  info.ballots[request.memberId] = ballot;
  return settle(tx, constitution, request.proposalId, proposal, info);
}

export function withdrawProposal(tx: Tx, request: { memberId: string; proposalId: string }): ProposalView {
  const { info } = loadProposal(tx, request.proposalId);
  if (info.proposer_id !== request.memberId) {
    throw new GovError(403, "AuthorizationFailed", "only the member who made a proposal can withdraw it");
  }
  if (info.state !== "Open") {
    throw new GovError(400, "ProposalNotOpen", `proposal ${request.proposalId} is ${info.state}, not Open`);
  }
  info.state = "Withdrawn";
  writeJson(tx, GovTables.proposalsInfo, utf8(request.proposalId), info);
  return viewOf(request.proposalId, info);
}

/**
 * Runs every ballot and resolve; applies an accepted proposal. Script failures never escape: a
 * throwing ballot is recorded as a vote failure, a throwing resolve or apply ends the proposal
 * Failed (the caller commits only the proposal's record then, not apply's partial writes).
 */
function settle(
  tx: Tx,
  constitution: Constitution,
  proposalId: string,
  proposal: string,
  info: ProposalInfo,
): ProposalView {
  const votes: Array<{ member_id: string; vote: boolean }> = [];
  const failures: Record<string, { reason: string; trace?: string }> = {};
  for (const [memberId, ballot] of Object.entries(info.ballots)) {
    try {
      votes.push({
        member_id: memberId,
        vote: constitution.vote(tx, ballot, proposal, info.proposer_id) === true,
      });
    } catch (e) {
      failures[memberId] = failureOf(e);
    }
  }
  let state: string;
  try {
    state = constitution.resolve(tx, proposal, info.proposer_id, votes);
  } catch (e) {
    return close(tx, proposalId, info, "Failed", votes, failures, failureOf(e));
  }
  if (state === "Open") {
    if (Object.keys(failures).length > 0) info.vote_failures = failures;
    else delete info.vote_failures;
    writeJson(tx, GovTables.proposalsInfo, utf8(proposalId), info);
    return viewOf(proposalId, info);
  }
  if (state === "Rejected") return close(tx, proposalId, info, "Rejected", votes, failures);
  if (state !== "Accepted") {
    return close(tx, proposalId, info, "Failed", votes, failures, {
      reason: `resolve returned ${JSON.stringify(state)}, not Open, Accepted or Rejected`,
    });
  }
  const view = close(tx, proposalId, info, "Accepted", votes, failures);
  // Apply sees the proposal already Accepted (as in CCF); if it throws, the caller rolls back
  // apply's writes and records the proposal as Failed.
  try {
    constitution.apply(tx, proposal, proposalId);
  } catch (e) {
    throw new ApplyFailed(proposal, proposalId, info, failureOf(e));
  }
  if (constitutionChanged(tx)) dropOpenProposals(tx, proposalId);
  return view;
}

/** Apply threw: the transaction must be re-run with only the Failed record. */
export class ApplyFailed extends Error {
  constructor(
    readonly proposal: string,
    readonly proposalId: string,
    readonly info: ProposalInfo,
    readonly failure: { reason: string; trace?: string },
  ) {
    super(`apply failed: ${failure.reason}`);
  }
}

/** Records a proposal that failed in apply (in a fresh transaction, without apply's writes). */
export function recordApplyFailure(tx: Tx, failed: ApplyFailed): ProposalView {
  tx.map(GovTables.proposals).set(utf8(failed.proposalId), utf8(failed.proposal));
  const info: ProposalInfo = { ...failed.info, state: "Failed", failure: failed.failure };
  writeJson(tx, GovTables.proposalsInfo, utf8(failed.proposalId), info);
  return viewOf(failed.proposalId, info);
}

function close(
  tx: Tx,
  proposalId: string,
  info: ProposalInfo,
  state: ProposalState,
  votes: Array<{ member_id: string; vote: boolean }>,
  failures: Record<string, { reason: string; trace?: string }>,
  failure?: { reason: string; trace?: string },
): ProposalView {
  info.state = state;
  info.final_votes = Object.fromEntries(votes.map((v) => [v.member_id, v.vote]));
  if (Object.keys(failures).length > 0) info.vote_failures = failures;
  if (failure) info.failure = failure;
  writeJson(tx, GovTables.proposalsInfo, utf8(proposalId), info);
  return viewOf(proposalId, info);
}

function failureOf(e: unknown): { reason: string; trace?: string } {
  const error = e as { message?: string; trace?: string; stack?: string };
  return {
    reason: String(error?.message ?? e),
    ...(error instanceof ConstitutionError && error.trace ? { trace: error.trace } : {}),
  };
}

function constitutionChanged(tx: Tx): boolean {
  return tx.writeSet().some((m) => m.name === GovTables.constitution);
}

/** A new constitution drops every other open proposal: they were made under the old rules. */
function dropOpenProposals(tx: Tx, except: string): void {
  const entries = scanMap(tx, GovTables.proposalsInfo);
  for (const [key, value] of entries) {
    const id = new TextDecoder().decode(key);
    const info = JSON.parse(new TextDecoder().decode(value)) as ProposalInfo;
    if (id !== except && info.state === "Open")
      writeJson(tx, GovTables.proposalsInfo, key, { ...info, state: "Dropped" });
  }
}
