import type { Tx } from "../kv/index.ts";
import { Tables as GovTables, readJson, scanMap, utf8 } from "../ledger/index.ts";
import { GovError } from "./request-error.ts";

// Proposals as the governance tables hold them, and how they are read (the lifecycle that
// writes them: proposals.ts).

/** Proposal states, as CCF names them. */
export type ProposalState = "Open" | "Accepted" | "Withdrawn" | "Rejected" | "Failed" | "Dropped";

/** What `public:ccf.gov.proposals_info` holds for each proposal. */
export interface ProposalInfo {
  proposer_id: string;
  state: ProposalState;
  /** Ballot scripts by member id. */
  ballots: Record<string, string>;
  /** How each ballot voted when the proposal closed. */
  final_votes?: Record<string, boolean>;
  /** Ballots that threw, by member id. */
  vote_failures?: Record<string, { reason: string; trace?: string }>;
  /** Why resolve or apply failed. */
  failure?: { reason: string; trace?: string };
}

export interface ProposalView {
  proposalId: string;
  proposerId: string;
  proposalState: ProposalState;
  ballotCount: number;
  finalVotes?: Record<string, boolean>;
  voteFailures?: Record<string, { reason: string; trace?: string }>;
  failure?: { reason: string; trace?: string };
}

export function viewOf(proposalId: string, info: ProposalInfo): ProposalView {
  return {
    proposalId,
    proposerId: info.proposer_id,
    proposalState: info.state,
    ballotCount: Object.keys(info.ballots).length,
    ...(info.final_votes ? { finalVotes: info.final_votes } : {}),
    ...(info.vote_failures ? { voteFailures: info.vote_failures } : {}),
    ...(info.failure ? { failure: info.failure } : {}),
  };
}

function memberStatus(tx: Tx, memberId: string): string | undefined {
  return readJson<{ status?: string }>(tx, GovTables.membersInfo, utf8(memberId))?.status;
}

/** Only Active members propose and vote (an Accepted member must first acknowledge the state). */
export function requireActiveMember(tx: Tx, memberId: string): void {
  const status = memberStatus(tx, memberId);
  if (status === undefined) throw new GovError(403, "AuthorizationFailed", `${memberId} is not a member`);
  if (status !== "Active") {
    throw new GovError(
      403,
      "AuthorizationFailed",
      `member ${memberId} is ${status}, not Active: acknowledge the state digest first`,
    );
  }
}

/** A proposal and its record, or the error a request for it answers with. */
export function loadProposal(tx: Tx, proposalId: string): { proposal: string; info: ProposalInfo } {
  if (!/^[0-9a-f]{64}$/.test(proposalId)) {
    throw new GovError(
      400,
      "InvalidResourceName",
      `proposal id must be 64 lower-case hex digits, got ${JSON.stringify(proposalId)}`,
    );
  }
  const raw = tx.map(GovTables.proposals).get(utf8(proposalId));
  const info = readJson<ProposalInfo>(tx, GovTables.proposalsInfo, utf8(proposalId));
  if (!raw || !info) throw new GovError(404, "ProposalNotFound", `no proposal ${proposalId}`);
  return { proposal: new TextDecoder().decode(raw), info };
}

export function getProposal(tx: Tx, proposalId: string): ProposalView & { actions: unknown } {
  const { proposal, info } = loadProposal(tx, proposalId);
  return { ...viewOf(proposalId, info), actions: JSON.parse(proposal) };
}

export function listProposals(tx: Tx): ProposalView[] {
  const entries = scanMap(tx, GovTables.proposalsInfo);
  return entries.map(([key, value]) =>
    viewOf(new TextDecoder().decode(key), JSON.parse(new TextDecoder().decode(value)) as ProposalInfo),
  );
}

export function getBallot(tx: Tx, proposalId: string, memberId: string): { ballot: string } {
  const { info } = loadProposal(tx, proposalId);
  const ballot = info.ballots[memberId];
  if (ballot === undefined)
    throw new GovError(404, "VoteNotFound", `member ${memberId} has not voted on ${proposalId}`);
  return { ballot };
}
