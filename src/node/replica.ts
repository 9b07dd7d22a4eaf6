import type { HardState, Message, Raft, Ready, RoleChange } from "../consensus/index.ts";
import type { LedgerState } from "../ledger/index.ts";
import { type DecodedEntry, decodeEntry, invariant } from "../ledger/index.ts";

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
  /**
   * Resolves once entries up to `seqno` are durable; rejects for good once a write has failed
   * (`LedgerFiles`). The replica watches it to fail-stop; a storage without it is never watched.
   */
  whenDurable?(seqno: number): Promise<void>;
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
  /**
   * The primary's entries of this event-loop turn are about to go to consensus (see `schedule`).
   * The node ends the batch with a signature here when clients wait for commit, so that the
   * signature travels in the same AppendEntries as the writes it covers, not in one of its own.
   */
  beforeBatch?(): void;
  /**
   * A write of the ledger or of the hard state failed: the replica has stopped (fail-stop) and
   * will send, vote and acknowledge nothing more. The node should stop serving and exit.
   */
  failed?(error: Error): void;
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
  /** Set when a write failed (a full disk, an I/O error): the replica does nothing more. */
  failure: Error | undefined;
  /** The last seqno handed to storage, and whether a `whenDurable` watch is pending. */
  private appended = 0;
  private watching = false;

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
    if (this.failure) return false;
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
      if (this.failure) return;
      try {
        this.hooks.beforeBatch?.();
      } catch (e) {
        // Signing failed: a bug or a broken key, after which this node must not carry on.
        this.failStop(e);
        return;
      }
      this.process();
    });
  }

  /** Carries out every pending Ready. Re-entrant calls are folded into the running loop. */
  process(): void {
    if (this.failure) return;
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
          try {
            this.handle(ready);
          } catch (e) {
            // A failed write stopped the replica (see `write`); anything else is a bug, thrown on.
            if (this.failure) return;
            throw e;
          }
          this.raft.advance(ready);
        }
      } while (this.again);
    } finally {
      this.processing = false;
    }
  }

  private handle(ready: Ready): void {
    const hardState = ready.hardState;
    if (hardState) this.write(() => this.hooks.saveHardState(hardState));
    if (ready.truncateAfter !== undefined) {
      this.state.rollback(ready.truncateAfter);
      this.hooks.rolledBack(ready.truncateAfter);
      this.appended = Math.min(this.appended, ready.truncateAfter);
      this.storage
        .truncate(ready.truncateAfter)
        .catch((e) => this.storageRejected(e, "ledger truncation failed"));
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
      this.write(() => this.storage.append(entry.seqno, entry.data, entry.isSignature));
      this.appended = entry.seqno;
    }
    this.watchDurable();
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

  /** Runs a synchronous write; if it throws, the replica fail-stops and the Ready is abandoned. */
  private write(run: () => void): void {
    try {
      run();
    } catch (e) {
      this.failStop(e);
      throw e;
    }
  }

  /**
   * Keeps one `whenDurable` watch on the last appended entry, so an asynchronous write failure
   * (ENOSPC on a batch, a failed sync) stops the replica instead of leaving it waiting forever.
   */
  private watchDurable(): void {
    if (this.watching || this.failure || !this.storage.whenDurable || this.appended === 0) return;
    const target = this.appended;
    this.watching = true;
    this.storage.whenDurable(target).then(
      () => {
        this.watching = false;
        if (this.appended > target) this.watchDurable();
      },
      // A truncation or a snapshot rejects this watch too; the next append watches again.
      (e) => {
        this.watching = false;
        this.storageRejected(e);
      },
    );
  }

  /**
   * A truncation or a snapshot also rejects what waited on the entries it dropped: only a storage
   * that now fails even `whenDurable(0)` has failed for good.
   */
  private storageRejected(error: unknown, message?: string): void {
    const probe = this.storage.whenDurable?.(0) ?? Promise.resolve();
    probe.then(
      () => message && this.log.error({ err: error }, message),
      (e) => this.failStop(e),
    );
  }

  /**
   * Fail-stop, after a failed write here or in the node (say its commit hint): said once, and the
   * node is told; nothing is sent, voted or acknowledged after.
   */
  failStop(error: unknown): void {
    if (this.failure) return;
    this.failure = error instanceof Error ? error : new Error(String(error));
    this.log.error(
      { err: this.failure, code: (error as NodeJS.ErrnoException)?.code },
      `this node stops (fail-stop) after a failed write: ${this.failure.message}`,
    );
    this.hooks.failed?.(this.failure);
  }
}
