import type { HardState, Message, Raft, Ready, RoleChange } from "../consensus/index.ts";
import { type DecodedEntry, decodeEntry, invariant } from "../ledger/index.ts";
import type { LedgerState } from "./ledger-state.ts";

/**
 * Where the replica writes the ledger: `LedgerFiles` on a node, the simulated disk in the
 * simulator (test/sim), which loses what was not synced when it crashes.
 */
export interface ReplicaStorage {
  /** Queues an entry after the last one; it is durable once `onDurable` says so. */
  append(seqno: number, frame: Uint8Array, isSignature: boolean): void;
  /** Drops every entry after `afterSeqno`, durable or not. */
  truncate(afterSeqno: number): Promise<void>;
  /** Calls `listener` with the last durable seqno each time it moves forward (after the sync). */
  onDurable(listener: (durableSeqno: number) => void): void;
}

/** When the replica's deferred work runs. */
export interface ReplicaScheduler {
  /** Runs `run` once, after the I/O callbacks of the current event-loop turn. */
  afterIo(run: () => void): void;
}

/** A node's scheduler: `setImmediate`, which runs after the poll phase's I/O callbacks. */
export const eventLoopScheduler: ReplicaScheduler = { afterIo: (run) => setImmediate(run) };

/** The ledger state as the replica uses it (`LedgerState`; the simulator may wrap it). */
export type ReplicaLedger = Pick<
  LedgerState,
  "view" | "lastSeqno" | "viewOf" | "applyReplicated" | "rollback" | "markCommitted"
>;

/** What the replica logs through (a pino logger on a node). */
export interface ReplicaLog {
  warn(fields: object, message: string): void;
  error(fields: object, message: string): void;
}

/** What the replica needs from the node around it. */
export interface ReplicaHooks {
  send(to: string, message: Message): void;
  /** Must be durable when it returns: votes and views are never forgotten. */
  saveHardState(state: HardState): void;
  roleChanged(change: RoleChange): void;
  committed(seqno: number): void;
  readReady(requestId: string, seqno: number | null): void;
  /** A backup applied an entry from the primary. */
  applied(entry: DecodedEntry): void;
  /** Entries after `seqno` were dropped. */
  rolledBack(seqno: number): void;
  /** Consensus wants the snapshot at `seqno` sent to `to`. */
  sendSnapshot(to: string, seqno: number): void;
}

/**
 * Drives consensus for one node: gives Raft the entries this node creates as primary, and
 * carries out each Ready in the order Raft asks (hard state, truncation, entries, messages,
 * commit, role). A backup applies the primary's entries to its own state, which re-checks every
 * signature against the Merkle root it computed itself; an entry that fails is refused, logged,
 * and never persisted, so this node stops acknowledging that primary.
 *
 * Storage and scheduling come in through interfaces, so the simulator (test/sim) runs this very
 * class on its simulated disk and clock. It asserts (throwing `LedgerInvariantError`) that the
 * entries consensus hands over to persist continue or match the ledger state, seqno and view.
 */
export class Replica {
  private processing = false;
  private again = false;
  private scheduled = false;
  /** Set when this backup refused an entry: it stops replicating and says why. */
  refusal: string | undefined;

  constructor(
    readonly raft: Raft,
    private readonly state: ReplicaLedger,
    private readonly storage: ReplicaStorage,
    private readonly hooks: ReplicaHooks,
    private readonly log: ReplicaLog,
    private readonly scheduler: ReplicaScheduler,
  ) {
    storage.onDurable((seqno) => {
      if (seqno > this.state.lastSeqno) return;
      this.raft.persisted(seqno, this.state.viewOf(seqno));
      this.process();
    });
  }

  /**
   * The primary's sink: hands a new entry to consensus. A signature is written through at once
   * (it may be closing the batch being gathered); other entries are handed over together once
   * this event-loop turn's I/O callbacks have run, so replication sends them in batches.
   */
  append(seqno: number, frame: Uint8Array, isSignature: boolean, config?: string[]): boolean {
    const proposed = this.raft.propose([
      { seqno, view: this.state.view, isSignature, data: frame, ...(config ? { config } : {}) },
    ]);
    if (!proposed) return false;
    if (isSignature) this.process();
    else this.schedule();
    return true;
  }

  step(from: string, message: unknown): void {
    if (typeof message !== "object" || message === null || (message as { from?: unknown }).from !== from) {
      this.log.warn({ from }, "dropped a consensus message whose sender does not match its channel");
      return;
    }
    this.raft.step(message);
    this.process();
  }

  tick(): void {
    this.raft.tick();
    this.process();
  }

  /**
   * After the I/O callbacks of this event-loop turn (setImmediate, not a microtask): every client
   * request that arrived in the same poll phase then travels in one AppendEntries per backup,
   * instead of one per request.
   */
  private schedule(): void {
    if (this.scheduled) return;
    this.scheduled = true;
    this.scheduler.afterIo(() => {
      this.scheduled = false;
      this.process();
    });
  }

  /** Carries out every pending Ready. Re-entrant calls are folded into the running loop. */
  process(): void {
    if (this.processing) {
      this.again = true;
      return;
    }
    this.processing = true;
    try {
      do {
        this.again = false;
        while (this.raft.hasReady()) {
          const ready = this.raft.ready();
          this.handle(ready);
          this.raft.advance(ready);
        }
      } while (this.again);
    } finally {
      this.processing = false;
    }
  }

  private handle(ready: Ready): void {
    if (ready.hardState) this.hooks.saveHardState(ready.hardState);
    if (ready.truncateAfter !== undefined) {
      this.state.rollback(ready.truncateAfter);
      this.hooks.rolledBack(ready.truncateAfter);
      this.storage
        .truncate(ready.truncateAfter)
        .catch((e) => this.log.error({ err: e }, "ledger truncation failed"));
    }
    for (const entry of ready.entriesToPersist) {
      if (this.refusal) break;
      // The entries consensus persists are the ones the ledger state holds, or the next one: a
      // mismatch would write one history to disk and serve another.
      const last = this.state.lastSeqno;
      invariant(
        entry.seqno <= last + 1,
        () => `consensus hands seqno ${entry.seqno} to persist after ${last}`,
      );
      if (entry.seqno <= last) {
        invariant(
          this.state.viewOf(entry.seqno) === entry.view,
          () =>
            `consensus hands ${entry.view}.${entry.seqno} to persist, the ledger state holds view ${this.state.viewOf(entry.seqno)} there`,
        );
      } else {
        try {
          const decoded = decodeEntry(entry.data);
          // Entries of the current view come from the primary this node follows: the signer.
          this.state.applyReplicated(decoded, { view: this.raft.view, primary: this.raft.leader });
          this.hooks.applied(decoded);
        } catch (e) {
          this.refusal = `refused entry ${entry.view}.${entry.seqno} from the primary: ${(e as Error).message}`;
          this.log.error({ seqno: entry.seqno, view: entry.view, err: e }, this.refusal);
          break;
        }
      }
      this.storage.append(entry.seqno, entry.data, entry.isSignature);
    }
    for (const { to, message } of ready.messages) this.hooks.send(to, message);
    for (const { to, seqno } of ready.snapshotsToSend) this.hooks.sendSnapshot(to, seqno);
    if (ready.commitSeqno !== undefined && !this.refusal) {
      this.state.markCommitted(ready.commitSeqno);
      this.hooks.committed(ready.commitSeqno);
    }
    if (ready.roleChange) this.hooks.roleChanged(ready.roleChange);
    for (const read of ready.readStates) this.hooks.readReady(read.requestId, read.seqno);
    for (const requestId of ready.readsRejected) this.hooks.readReady(requestId, null);
  }
}
