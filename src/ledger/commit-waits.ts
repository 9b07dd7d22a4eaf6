import { LedgerStateError } from "./errors.ts";

interface Waiter {
  seqno: number;
  resolve: () => void;
  reject: (e: Error) => void;
}

/**
 * Who waits for the commit point: promises for a seqno to commit, and listeners called each time
 * it moves. The ledger state tells it when the point moves, when entries are rolled back, and when
 * a snapshot replaces everything; each settles the waits it decides.
 */
export class CommitWaits {
  private waiters: Waiter[] = [];
  private readonly listeners: Array<(commit: number) => void> = [];

  /** Resolves once `seqno` is committed (`commitSeqno` is the commit point now). */
  wait(seqno: number, commitSeqno: number): Promise<void> {
    if (seqno <= commitSeqno) return Promise.resolve();
    return new Promise((resolve, reject) => this.waiters.push({ seqno, resolve, reject }));
  }

  /** Called from inside the commit step: listeners must not append (defer such work). */
  onCommit(listener: (commit: number) => void): void {
    this.listeners.push(listener);
  }

  /** The commit point moved to `commit`. */
  committed(commit: number): void {
    for (const listener of this.listeners) listener(commit);
    this.settle((seqno) => (seqno <= commit ? "resolve" : undefined));
  }

  /** Entries after `seqno` were dropped: their waits fail. */
  rolledBack(seqno: number): void {
    this.settle((at) => (at > seqno ? `transaction at seqno ${at} was rolled back` : undefined));
  }

  /** A snapshot committed up to `commit` replaced the state: every wait ends. */
  replaced(commit: number): void {
    this.settle((seqno) =>
      seqno <= commit ? "resolve" : `transaction at seqno ${seqno} was replaced by a snapshot`,
    );
  }

  /** Fails every pending wait, for shutdown. */
  abort(reason: string): void {
    this.settle(() => reason);
  }

  /** Resolves, rejects (with the message returned) or keeps (undefined) each waiter. */
  private settle(decide: (seqno: number) => "resolve" | string | undefined): void {
    const waiting = this.waiters;
    this.waiters = [];
    for (const waiter of waiting) {
      const outcome = decide(waiter.seqno);
      if (outcome === undefined) this.waiters.push(waiter);
      else if (outcome === "resolve") waiter.resolve();
      else waiter.reject(new LedgerStateError(outcome));
    }
  }
}
