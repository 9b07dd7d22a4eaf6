import type { Entry, NodeId } from "./types.ts";

/**
 * Node-to-node messages. Plain objects (no classes, no Maps) so the network layer can serialise
 * them with msgpack as they are. Every message names its sender, its addressee and the sender's
 * view; `validate.ts` checks all of it on arrival.
 */
interface Header {
  from: NodeId;
  to: NodeId;
  view: number;
}

/** "Would you vote for me in `view`?" Sent before a real election; changes no one's state. */
export interface PreVote extends Header {
  type: "pre_vote";
  lastSeqno: number;
  lastView: number;
}

export interface PreVoteResponse extends Header {
  type: "pre_vote_response";
  granted: boolean;
}

export interface RequestVote extends Header {
  type: "request_vote";
  lastSeqno: number;
  lastView: number;
  /** Sent after a TimeoutNow: voters answer even if they heard from a primary recently. */
  handover: boolean;
}

export interface RequestVoteResponse extends Header {
  type: "request_vote_response";
  granted: boolean;
}

export interface AppendEntries extends Header {
  type: "append_entries";
  prevSeqno: number;
  prevView: number;
  entries: Entry[];
  commitSeqno: number;
}

/**
 * The answer to AppendEntries, and also the unsolicited acknowledgement a backup sends when more of
 * its log becomes durable.
 */
export interface AppendEntriesResponse extends Header {
  type: "append_entries_response";
  success: boolean;
  /** On success: the backup's log matches the primary's up to here. */
  matchSeqno: number;
  /** How much of the matching prefix is durable on the backup. Commit counts only this. */
  durableSeqno: number;
  /** The backup's last seqno (a hint when it is too short). */
  lastSeqno: number;
  commitSeqno: number;
  /** On failure: the prevSeqno of the AppendEntries that did not match. */
  rejectedPrev: number;
  /** On failure: the view of the backup's entry at rejectedPrev, or 0 if it has none there. */
  conflictView: number;
  /** On failure: the first seqno of conflictView in the backup's log (fast backtracking). */
  conflictFirst: number;
}

/** Keeps backups from campaigning, carries the commit point, and confirms leadership for reads. */
export interface Heartbeat extends Header {
  type: "heartbeat";
  commitSeqno: number;
  /** Read-index round; echoed back so the primary knows the answer postdates the read. */
  round: number;
}

export interface HeartbeatResponse extends Header {
  type: "heartbeat_response";
  round: number;
  matchSeqno: number;
  durableSeqno: number;
  lastSeqno: number;
  commitSeqno: number;
}

/** From a retiring primary to its chosen successor: campaign now. */
export interface TimeoutNow extends Header {
  type: "timeout_now";
}

export type Message =
  | PreVote
  | PreVoteResponse
  | RequestVote
  | RequestVoteResponse
  | AppendEntries
  | AppendEntriesResponse
  | Heartbeat
  | HeartbeatResponse
  | TimeoutNow;

export type MessageType = Message["type"];

export interface Outbound {
  to: NodeId;
  message: Message;
}
