export { ConsensusError, InvariantError } from "./assert.ts";
export type { RaftConfig, UnsafeBugs } from "./config.ts";
export type {
  AppendEntries,
  AppendEntriesResponse,
  Heartbeat,
  HeartbeatResponse,
  Message,
  MessageType,
  Outbound,
  PreVote,
  PreVoteResponse,
  RequestVote,
  RequestVoteResponse,
  TimeoutNow,
} from "./messages.ts";
export type { PeerStatus } from "./primary.ts";
export type { RaftStatus } from "./raft.ts";
export { Raft } from "./raft.ts";
export type { RaftStats } from "./raft-state.ts";
export type { Ready, RoleChange } from "./ready.ts";
export { isEmptyReady } from "./ready.ts";
export type { Entry, HardState, NodeId, PersistedLog, Role, SnapshotPoint } from "./types.ts";
export { parseMessage } from "./validate.ts";
