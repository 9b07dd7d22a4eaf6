// Public face of src/gov.

export { CONSTITUTION_FILES, defaultConstitution, joinConstitution } from "./default-constitution.ts";
export { jsConstitution, txKv } from "./js-constitution.ts";
export {
  ApplyFailed,
  type Constitution,
  ConstitutionError,
  createProposal,
  GovError,
  getBallot,
  getProposal,
  listProposals,
  type ProposalInfo,
  type ProposalState,
  type ProposalView,
  recordApplyFailure,
  requireActiveMember,
  submitBallot,
  withdrawProposal,
} from "./proposals.ts";
export {
  DEFAULT_REPLAY_MAX_ENTRIES,
  DEFAULT_REPLAY_WINDOW_SECONDS,
  ReplayGuard,
  type ReplayGuardOptions,
  type ReplayGuardState,
} from "./replay.ts";
export {
  acceptSignedRequest,
  ackStateDigest,
  getStateDigest,
  RECENT_REQUESTS,
  updateStateDigest,
} from "./requests.ts";
export {
  DEFAULT_MAX_CLOCK_SKEW_SECONDS,
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
  type VerifiedGovRequest,
  type VerifyGovRequestOptions,
  verifyGovRequest,
} from "./signed-request.ts";
export { fromUtf8, GovTables, readJson, SINGLETON, scanMap, utf8, writeJson } from "./tables.ts";
export {
  type GovEffects,
  type GovExpectation,
  type GovernanceWrite,
  type GovHost,
  type GovWork,
  type GovWriteResult,
  governanceWrite,
} from "./write.ts";
