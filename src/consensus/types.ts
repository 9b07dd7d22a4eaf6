/** A node's identity as Raft sees it: an opaque, non-empty string. */
export type NodeId = string;

/**
 * One log entry. Raft orders and replicates entries but never looks inside `data`; it reads only
 * this metadata. The primary's node builds entries (including signature transactions) and gives
 * them to `propose` with the seqno and view Raft expects next.
 */
export interface Entry {
  /** Position in the log, contiguous from 1. */
  seqno: number;
  /** The view (Raft term) of the primary that created the entry. */
  view: number;
  /** Signature transactions are the only commit points. */
  isSignature: boolean;
  /**
   * A reconfiguration: the complete new set of voting node ids. It takes effect as soon as it is
   * appended to a log, not when it commits.
   */
  config?: NodeId[];
  /** Opaque payload (the node's serialised ledger entry). */
  data: Uint8Array;
}

/** What must be durable before any message of the same Ready is sent. */
export interface HardState {
  view: number;
  votedFor: NodeId | null;
}

/**
 * Where a log starts: the last entry covered by a snapshot (or seqno 0 for a log that starts at
 * the beginning), with the configuration in effect at that point. Everything at or before it is
 * committed.
 */
export interface SnapshotPoint {
  seqno: number;
  view: number;
  config: NodeId[];
}

/** The persisted log a node restarts from. */
export interface PersistedLog {
  start: SnapshotPoint;
  entries: Entry[];
}

export type Role = "backup" | "precandidate" | "candidate" | "primary" | "retired";
