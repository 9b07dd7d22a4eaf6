import type { Entry, NodeId, Raft, RaftConfig, SnapshotPoint } from "../../src/consensus/index.ts";
import type { StoreSnapshot } from "../../src/kv/index.ts";
import type { LedgerSecret, LedgerState } from "../../src/ledger/index.ts";
import type { WriteRegistry } from "./app.ts";
import type { SimDisk } from "./disk.ts";
import type { EventQueue } from "./events.ts";
import type { SimNetwork } from "./network.ts";
import type { Packet } from "./packets.ts";
import type { Prng } from "./prng.ts";

// What a simulated node (node.ts) is given, and what it reports to.

/** A simulated node as the checker sees it (a `SimNode`). */
export interface ObservedNode {
  readonly id: NodeId;
  readonly raft: Raft | null;
  readonly state: LedgerState | null;
  readonly disk: SimDisk;
  /** The commit point the checker has seen this node reach. */
  readonly applied: number;
  /** The engine's whole store at its commit point. */
  committedSnapshot(): StoreSnapshot;
}

/** What a simulated node reports to the safety checker. */
export interface Observer {
  primary(node: ObservedNode, view: number): void;
  /** Each entry the node commits, in order (not those a snapshot covered). */
  committed(node: ObservedNode, entry: Entry): void;
  /** Consensus moved the commit point to `seqno`; the engine has not been told yet. */
  commitPoint(node: ObservedNode, seqno: number): void;
  /** The engine marked the commit point: its state there must be the replay of the log. */
  applied(node: ObservedNode): void;
  snapshotInstalled(node: ObservedNode, point: SnapshotPoint, snapshot: StoreSnapshot): void;
  snapshotTaken(node: ObservedNode, point: SnapshotPoint, bytes: Uint8Array): void;
  /** The node has handled an event (its replica ran): its engine and Raft agree again. */
  afterEvent(node: ObservedNode): void;
  /** The node cannot go on (it refused the primary's entry, or its state disagrees with Raft). */
  broken(node: ObservedNode, problem: string): never;
}

/**
 * Deliberate mistakes in driving the engine, for tests of the simulator only: each must be caught.
 */
export interface NodeBugs {
  /**
   * Reads are answered from the primary's latest store (which holds writes not yet committed)
   * as soon as the read index is confirmed, instead of from the committed state.
   */
  readUncommitted?: boolean;
  /** A truncation drops entries from the ledger and Raft's log, but the engine is not rolled back. */
  skipRollback?: boolean;
}

export interface NodeEnv {
  queue: EventQueue;
  prng: Prng;
  net: SimNetwork<Packet>;
  observer: Observer;
  trace: ((line: string) => void) | null;
  raft: Partial<RaftConfig>;
  tickMs: number;
  /** A primary signs after this many entries, or after `signTicks` ticks with unsigned entries. */
  signEvery: number;
  signTicks: number;
  diskLatencyMs: [number, number];
  /** The service's ledger secret (every node of the run knows it). */
  secret: LedgerSecret;
  serviceCertPem: string;
  writes: WriteRegistry;
  /** What the engine's clock reads at simulated time 0 (ms since the epoch). */
  clockBase: number;
  bugs: NodeBugs;
}
