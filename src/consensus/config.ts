import { ConsensusError } from "./assert.ts";
import type { HardState, NodeId, PersistedLog } from "./types.ts";
import { isNodeId } from "./validate.ts";

/**
 * Deliberate protocol bugs, for tests only: the simulator must catch each of them. Never set
 * these outside a test.
 */
export interface UnsafeBugs {
  /**
   * A candidate counts grants without checking what they were for: a vote from an earlier view,
   * or a late pre-vote grant (which binds nobody), counts as a vote in its current election.
   */
  countStaleVotes?: boolean;
  /** The primary commits at any entry a quorum holds, not only at signatures. */
  commitNonSignature?: boolean;
  /** The primary commits a signature from an earlier view once a quorum holds it (Raft's figure 8). */
  commitEarlierView?: boolean;
  /** Voters grant votes without checking that the candidate's log is at least as up to date. */
  ignoreLogOnVote?: boolean;
  /** Voters grant a second vote in a view they already voted in (as if the vote were not kept). */
  voteTwice?: boolean;
  /**
   * Voters compare logs by length first: a longer log of an older view wins over a shorter log
   * of a newer view (the up-to-date check of log.ts with its two terms swapped in priority).
   */
  longerLogWins?: boolean;
  /** The primary confirms a linearizable read without hearing from a quorum (no read-index round). */
  readWithoutQuorum?: boolean;
}

export interface RaftConfig {
  id: NodeId;
  /** Uniform in [0, 1); only used to spread election timeouts. Pass a seeded PRNG. */
  random: () => number;
  /** The persisted log to start from. Default: empty, no configuration (a node about to join). */
  log?: PersistedLog;
  /** The persisted hard state. Default: the last log view, no vote. */
  hardState?: HardState;
  /**
   * The commit point the node knew before it stopped (for Coco, from its ledger), if any. Raft
   * starts from the last signature at or before it that the log holds. Default: the log start.
   */
  commitSeqno?: number;
  /** Ticks between heartbeats. Default 1. */
  heartbeatTicks?: number;
  /** Election timeouts are drawn from [min, max) ticks. Defaults 10 and 50 (1-5 s at 100 ms). */
  electionTicksMin?: number;
  electionTicksMax?: number;
  /** Most entries and bytes in one AppendEntries (at least one entry is always sent). */
  maxBatchEntries?: number;
  maxBatchBytes?: number;
  /** AppendEntries batches in flight to one backup while it keeps up. */
  maxInflight?: number;
  /** Ticks to wait for a backup to install a snapshot before asking again. */
  snapshotRetryTicks?: number;
  unsafe?: UnsafeBugs;
}

export interface Settings {
  heartbeatTicks: number;
  electionTicksMin: number;
  electionTicksMax: number;
  maxBatchEntries: number;
  maxBatchBytes: number;
  maxInflight: number;
  snapshotRetryTicks: number;
  unsafe: UnsafeBugs;
}

function positive(name: string, value: number | undefined, fallback: number): number {
  const result = value ?? fallback;
  if (!Number.isSafeInteger(result) || result < 1) {
    throw new ConsensusError(`${name} must be a positive integer, got ${value}`);
  }
  return result;
}

export function settingsOf(config: RaftConfig): Settings {
  if (!isNodeId(config.id)) throw new ConsensusError("id must be a non-empty string");
  if (typeof config.random !== "function") throw new ConsensusError("random must be a function");
  const heartbeatTicks = positive("heartbeatTicks", config.heartbeatTicks, 1);
  const electionTicksMin = positive("electionTicksMin", config.electionTicksMin, 10);
  const electionTicksMax = positive("electionTicksMax", config.electionTicksMax, 50);
  if (electionTicksMin <= heartbeatTicks) {
    throw new ConsensusError("electionTicksMin must be greater than heartbeatTicks");
  }
  if (electionTicksMax < electionTicksMin) {
    throw new ConsensusError("electionTicksMax must be at least electionTicksMin");
  }
  return {
    heartbeatTicks,
    electionTicksMin,
    electionTicksMax,
    maxBatchEntries: positive("maxBatchEntries", config.maxBatchEntries, 256),
    maxBatchBytes: positive("maxBatchBytes", config.maxBatchBytes, 1 << 20),
    maxInflight: positive("maxInflight", config.maxInflight, 8),
    snapshotRetryTicks: positive("snapshotRetryTicks", config.snapshotRetryTicks, 2 * electionTicksMax),
    unsafe: config.unsafe ?? {},
  };
}
