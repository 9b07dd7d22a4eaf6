import type { NodeId, Raft, SnapshotPoint } from "../../src/consensus/index.ts";
import type { StoreSnapshot } from "../../src/kv/index.ts";
import { decodeSnapshot, type LedgerState, LedgerStateError } from "../../src/ledger/index.ts";
import type { SimDisk, SimLedger } from "./disk.ts";
import { simIds } from "./keys.ts";
import type { SimNetwork } from "./network.ts";
import type { Packet } from "./packets.ts";

/** What a node's snapshots need of its node. */
export interface SnapshotHost {
  readonly id: NodeId;
  readonly disk: SimDisk;
  readonly net: SimNetwork<Packet>;
  readonly serviceCertPem: string;
  /** Null while the node is down. */
  raft(): Raft | null;
  state(): LedgerState | null;
  storage(): SimLedger;
  trace(line: string): void;
  /** The checker's hooks (`Observer`), for this node. */
  broken(problem: string): never;
  taken(point: SnapshotPoint, bytes: Uint8Array): void;
  installed(point: SnapshotPoint, snapshot: StoreSnapshot): void;
  applied(): void;
  /** Tells the engine its commit point moved (a snapshot of an entry it holds covers it). */
  markCommitted(seqno: number): void;
  serveReads(): void;
  /** A snapshot replaced the engine's state up to `seqno`. */
  replaced(seqno: number): void;
}

/**
 * A simulated node's snapshots, as Coco's nodes take, send and install them: taken at a committed
 * signature (or at the next one), written once committed, and checked by the engine before a
 * received one replaces anything.
 */
export class NodeSnapshots {
  /** A snapshot was asked for while the newest signature was not committed: take it at the next. */
  private snapshotWanted = false;
  private pendingSnapshot: { seqno: number; bytes: Uint8Array } | undefined;

  constructor(private readonly host: SnapshotHost) {}

  /**
   * Takes a snapshot at the commit point and compacts the log up to it. The engine encodes a
   * snapshot only at its newest signature; if that is not committed yet, the snapshot is taken at
   * the next signature and written once that commits, as Coco's nodes do.
   */
  take(): boolean {
    const raft = this.host.raft();
    const state = this.host.state();
    if (!raft || !state || state.commitSeqno <= raft.logStart.seqno) return false;
    const commit = state.commitSeqno;
    if (state.lastSignatureSeqno === commit) {
      try {
        this.writeLocalSnapshot(commit, state.encodeSnapshotAt(commit));
        return true;
      } catch (error) {
        // A rollback past a newer signature makes the engine forget the frame of the one before,
        // so it cannot encode there until the next signature (see docs/consensus.md).
        if (!(error instanceof LedgerStateError)) throw error;
        this.host.trace(`snapshot at ${commit}: ${error.message}`);
      }
    }
    this.snapshotWanted = true;
    this.host.trace(`snapshot wanted at the next signature (commit ${commit})`);
    return true;
  }

  /** A signature entry joined this node's ledger: a snapshot that was asked for is taken there. */
  afterSignature(seqno: number): void {
    if (!this.snapshotWanted || this.pendingSnapshot) return;
    this.snapshotWanted = false;
    this.pendingSnapshot = { seqno, bytes: this.host.state()!.encodeSnapshotAt(seqno) };
    this.host.trace(`snapshot encoded at ${seqno}, written once committed`);
  }

  /** Consensus dropped the entries after `after`: a snapshot encoded there waits for the next signature. */
  rolledBack(after: number): void {
    if (this.pendingSnapshot && this.pendingSnapshot.seqno > after) {
      this.pendingSnapshot = undefined;
      this.snapshotWanted = true;
    }
  }

  /** The engine's commit point moved to `commit`: a snapshot encoded at or before it is written. */
  committed(commit: number): void {
    const pending = this.pendingSnapshot;
    if (pending && pending.seqno <= commit) {
      this.pendingSnapshot = undefined;
      this.writeLocalSnapshot(pending.seqno, pending.bytes);
    }
  }

  /** The node crashed: a snapshot not yet written is lost with it. */
  clear(): void {
    this.snapshotWanted = false;
    this.pendingSnapshot = undefined;
  }

  private writeLocalSnapshot(seqno: number, bytes: Uint8Array): void {
    const raft = this.host.raft()!;
    if (seqno <= raft.logStart.seqno) return;
    const point = raft.snapshotPoint(seqno);
    this.host.taken(point, bytes);
    this.host.disk.writeSnapshot({ point, bytes }, false);
    raft.compact(seqno);
    this.host.trace(`snapshot at ${seqno}`);
  }

  send(to: NodeId, seqno: number): void {
    const snapshot = this.host.disk.snapshot;
    if (!snapshot || snapshot.point.seqno !== seqno)
      throw new Error(`${this.host.id} was asked to send a snapshot at ${seqno} it does not have`);
    this.host.trace(`send snapshot ${seqno} to ${to}`);
    this.host.net.send(this.host.id, to, { kind: "snapshot", point: snapshot.point, bytes: snapshot.bytes });
  }

  /**
   * A snapshot from the primary. If the engine holds that very entry, consensus only moves its
   * log start and commit point there. Otherwise the engine checks the snapshot (its anchor must be
   * signed by a node and by the service) before anything changes, and then it replaces the
   * engine's state, Raft's log and the ledger together.
   */
  install(from: string, point: SnapshotPoint, bytes: Uint8Array): void {
    const raft = this.host.raft()!;
    const state = this.host.state()!;
    if (point.seqno <= raft.commitSeqno) {
      this.host.trace(`snapshot ${point.seqno} from ${from}: already committed`);
      return;
    }
    const secrets = state.secrets;
    let decoded: ReturnType<typeof decodeSnapshot>;
    try {
      decoded = decodeSnapshot(bytes, secrets);
    } catch (error) {
      this.host.broken(`snapshot ${point.seqno} from ${from}: ${(error as Error).message}`);
    }
    if (decoded.snapshot.version !== point.seqno || decoded.view !== point.view) {
      this.host.broken(
        `snapshot from ${from} holds ${decoded.view}.${decoded.snapshot.version}, sent as ${point.view}.${point.seqno}`,
      );
    }
    if (state.lastSeqno >= point.seqno && state.viewOf(point.seqno) === point.view) {
      const result = raft.restoreSnapshot(point);
      this.host.trace(`snapshot ${point.seqno} from ${from}: ${result}`);
      if (result === "ignored") return;
      if (result !== "kept_suffix") this.host.broken(`Raft ${result} a log the engine matches`);
      this.host.disk.writeSnapshot({ point, bytes }, false);
      this.host.installed(point, decoded.snapshot);
      this.host.markCommitted(point.seqno);
      this.host.serveReads();
      return;
    }
    let prepared: ReturnType<LedgerState["prepareSnapshot"]>;
    try {
      prepared = state.prepareSnapshot(decoded, this.host.serviceCertPem);
    } catch (error) {
      this.host.broken(`snapshot ${point.seqno} from ${from}: ${(error as Error).message}`);
    }
    if (simIds(prepared.config).join(",") !== [...point.config].sort().join(",")) {
      this.host.broken(
        `snapshot ${point.seqno} trusts [${simIds(prepared.config)}], consensus has [${point.config}] there`,
      );
    }
    const result = raft.restoreSnapshot(point);
    this.host.trace(`snapshot ${point.seqno} from ${from}: ${result}`);
    if (result === "ignored") return;
    if (result !== "reset") this.host.broken(`Raft kept a log suffix the engine does not hold`);
    state.installSnapshot(prepared);
    this.host.storage().restartAfter({ point, bytes });
    this.host.replaced(point.seqno);
    this.pendingSnapshot = undefined;
    this.host.installed(point, decoded.snapshot);
    this.host.applied();
    this.host.serveReads();
  }
}
