/**
 * Errors as the console shows them: what failed, why (the node's own code and message), and what
 * to do about it. The hints are keyed by the node's error codes (docs/api.md, docs/governance.md).
 */
export interface ConsoleError {
  /** What the console was trying to do: "Create the proposal". */
  what: string;
  code: string;
  /** Why it failed, in the node's words (or the console's when no node answered). */
  message: string;
  /** What the person can do next. */
  action: string;
  status: number;
}

const HINTS: Record<string, string> = {
  Unreachable:
    "No node answered. Check that the network is running (npm start) and that the console was given the right node addresses.",
  NotPrimary: "An election is under way. Wait a few seconds and try again.",
  ForwardingFailed: "The node could not reach the primary. Wait a few seconds and try again.",
  ForwardingTimeout:
    "The primary did not answer in time. Try again; if it keeps failing, look at the Network page.",
  CommitTimeout: "The change was not committed in time. Look at the Network page: is a majority of nodes up?",
  CommitUnavailable: "The primary changed while this was being committed. Try again.",
  InvalidAuthenticationInfo:
    "The network does not know this console's member certificate (or it has expired). Start the console with a member's certificate and key.",
  AuthorizationFailed: "This identity is not allowed to do that.",
  UnknownKid: "This member is not a member of the service. Ask the consortium to add it.",
  BadSignature: "The signature did not verify: the console's key does not match its certificate.",
  Stale: "The request's time is too old for the service. Check this machine's clock.",
  FutureCreatedAt: "This machine's clock is ahead of the service's. Check the clock.",
  Replay: "The service has already seen this exact request. Try again.",
  ProposalFailedToValidate:
    "The constitution refused the proposal. Fix the action's arguments and submit again.",
  TooManyOpenProposals: "This member has too many open proposals. Withdraw one or wait for some to resolve.",
  ProposalNotOpen: "The proposal has already been resolved; reload to see its outcome.",
  ProposalNotFound: "No such proposal. It may have been made on another service.",
  VoteNotFound: "This member has not voted on that proposal yet.",
  MemberNotActive: "Only Active members may propose and vote. Activate the member first (coco gov activate).",
  TransactionNotFound: "Check the transaction id (view.seqno). The node has no such transaction.",
  TransactionInvalid: "That transaction was rolled back and will never commit.",
  TransactionPending: "The transaction is not committed yet. Try again in a moment.",
  ReceiptNotAvailable: "This node started from a snapshot. Ask a node that holds the whole ledger.",
  InvalidQueryParameterValue: "Check the value you typed.",
  InvalidInput: "Check the value you typed.",
  ServiceNotOpen: "The service is not open yet.",
  ResourceNotFound: "The node does not have this endpoint or record.",
  NoEncryptionKey:
    "This console has no recovery encryption key. Start it with --encryption-key <member_enc_privk.pem>.",
};

export function consoleError(what: string, status: number, code: string, message: string): ConsoleError {
  return {
    what,
    status,
    code,
    message,
    action:
      HINTS[code] ??
      (status >= 500 ? "Try again; if it keeps failing, see the nodes' logs." : "Check your input."),
  };
}
