// Public face of src/gov.

export { CONSTITUTION_FILES, defaultConstitution, joinConstitution } from "./default-constitution.ts";
export {
  getBallot,
  getProposal,
  listProposals,
  type ProposalInfo,
  type ProposalState,
  type ProposalView,
  requireActiveMember,
} from "./proposal-records.ts";
export {
  ApplyFailed,
  type Constitution,
  ConstitutionError,
  createProposal,
  DEFAULT_MAX_OPEN_PROPOSALS_PER_MEMBER,
  recordApplyFailure,
  submitBallot,
  withdrawProposal,
} from "./proposals.ts";
export {
  DEFAULT_REPLAY_MAX_ENTRIES,
  MAX_REPLAY_MAX_ENTRIES,
  MemberReplayWindow,
  ReplayGuard,
  type WindowChange,
  type WindowEntry,
  type WindowLimits,
} from "./replay.ts";
export { GovError } from "./request-error.ts";
export {
  acceptSignedRequest,
  ackStateDigest,
  getStateDigest,
  STATE_DIGEST_UPDATE_INTERVAL_SECONDS,
  updateStateDigest,
} from "./requests.ts";
export {
  DEFAULT_MAX_FUTURE_SECONDS,
  DEFAULT_MAX_PAST_SECONDS,
  GOV_MESSAGE_TYPES,
  GOV_MSG_CREATED_AT,
  GOV_MSG_PROPOSAL_ID,
  GOV_MSG_TYPE,
  GOV_TYPES_WITH_PROPOSAL_ID,
  type GovMessageType,
  GovRequestError,
  type GovRequestErrorCode,
  isGovMessageType,
  type SignGovRequestInput,
  signGovRequest,
} from "./signed-request.ts";
export { type VerifiedGovRequest, type VerifyGovRequestOptions, verifyGovRequest } from "./verify-request.ts";
export {
  type GovEffects,
  type GovExpectation,
  type GovernanceWrite,
  type GovHost,
  type GovWork,
  type GovWriteResult,
  governanceWrite,
} from "./write.ts";
