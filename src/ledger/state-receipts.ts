import type { DecodedEntry } from "./entry.ts";
import { invariant, LedgerStateError } from "./errors.ts";
import type { ReceiptInMemory, ReceiptLookup, TxStatus } from "./outcomes.ts";
import {
  archiveReadFrom,
  buildReceipt,
  firstAfter,
  readThroughSignature,
  receiptFromEntries,
} from "./receipts.ts";
import { LedgerStateBase } from "./state-base.ts";

/**
 * The ledger state's second layer (see state-base.ts): the commit point, who waits for it, and
 * receipts, from memory for the last `receiptWindow` transactions before the commit point and
 * rebuilt from the ledger files for older ones, whose proofs leave memory as commit advances.
 */
export class LedgerReceipts extends LedgerStateBase {
  /**
   * A single node reports entries durable up to `seqno`: commit advances to the last signature
   * within. (With replication, consensus decides the commit point and calls markCommitted.)
   */
  markDurable(seqno: number): void {
    let commit = this._commitSeqno;
    for (let i = this.signatureSeqnos.length - 1; i >= 0; i--) {
      const sig = this.signatureSeqnos[i]!;
      if (sig <= seqno) {
        commit = Math.max(commit, sig);
        break;
      }
    }
    this.markCommitted(commit);
  }

  /** Commit advances to `commit`, which must be a signature transaction this node holds. */
  markCommitted(commit: number): void {
    invariant(
      commit >= this._commitSeqno,
      () => `commit point would move back from ${this._commitSeqno} to ${commit}`,
    );
    if (commit === this._commitSeqno) return;
    if (!this.signatures.has(commit)) {
      throw new LedgerStateError(`commit point ${commit} is not a signature transaction`);
    }
    this._commitSeqno = commit;
    this.store.compact(commit);
    this.archiveOldProofs();
    this.commitWaits.committed(commit);
  }

  /**
   * Receipts of the transactions this far before the commit point are served from memory; the
   * proofs of older ones are dropped as commit advances and rebuilt from `archive` (receipts.ts).
   * Infinity keeps every proof in memory. A smaller window applies at once.
   */
  get receiptWindow(): number {
    return this._receiptWindow;
  }
  set receiptWindow(transactions: number) {
    if (!(transactions >= 1))
      throw new LedgerStateError(`the receipt window must be at least 1, got ${transactions}`);
    this._receiptWindow = transactions;
    this.archiveOldProofs();
  }

  /** What this node holds in memory for receipts (tests and benchmarks watch it stay bounded). */
  heldProofs(): { archivedTo: number; treePages: number; metaPages: number; signatures: number } {
    return {
      archivedTo: this.archivedTo,
      treePages: this.tree.pagesHeld,
      metaPages: this.meta.pagesHeld,
      signatures: this.signatureSeqnos.length,
    };
  }

  /**
   * Drops from memory the proofs of the transactions more than `receiptWindow` before the commit
   * point: the Merkle tree's lower levels and the metadata pages there (kept: the frontier and
   * the upper levels), and their signature records. Rollbacks never reach below the commit
   * point, and appends, signatures and snapshots need only the frontier, so only old receipts
   * are affected: `loadReceipt` rebuilds those from the ledger files.
   */
  protected archiveOldProofs(): void {
    const to = this._commitSeqno - this._receiptWindow;
    if (!(to > this.archivedTo)) return;
    this.archivedTo = to;
    this.tree.compact(to, this.firstSeqnoOnDisk - 1);
    if (to > this.metaStart) this.meta.compact(to - this.metaStart);
    let dropped = 0;
    while (dropped < this.signatureSeqnos.length && this.signatureSeqnos[dropped]! <= to) {
      this.signatures.delete(this.signatureSeqnos[dropped]!);
      dropped++;
    }
    if (dropped > 0) this.signatureSeqnos.splice(0, dropped);
  }

  /**
   * The first entry the node's ledger files hold: 1, or just after the snapshot the node's history
   * starts from (that snapshot's own signature entry is in the snapshot, not the files).
   */
  private get firstSeqnoOnDisk(): number {
    return this.metaStart === 0 ? 1 : this.metaStart + 2;
  }

  /**
   * Calls `listener` each time the commit point moves forward, from inside `markCommitted` (so
   * it must not append: consensus may be mid-step; defer such work).
   */
  onCommit(listener: (commit: number) => void): void {
    this.commitWaits.onCommit(listener);
  }

  /** Resolves once `seqno` is committed. */
  waitForCommit(seqno: number): Promise<void> {
    return this.commitWaits.wait(seqno, this._commitSeqno);
  }

  /** Fails every pending wait, for shutdown. */
  abortWaiters(reason: string): void {
    this.commitWaits.abort(reason);
  }

  txStatus(view: number, seqno: number): TxStatus {
    if (seqno < 1) return "Invalid";
    if (seqno > this.lastSeqno) return view < this._view ? "Invalid" : "Unknown";
    if (this.viewOf(seqno) !== view) return "Invalid";
    return seqno <= this._commitSeqno ? "Committed" : "Pending";
  }

  /**
   * The receipt of a committed transaction from memory, or `Archived` (with where to start
   * reading) when its proof left memory: `loadReceipt` serves both.
   */
  receipt(view: number, seqno: number): ReceiptInMemory {
    const status = this.txStatus(view, seqno);
    if (status !== "Committed") return { status };
    if (seqno <= this.metaStart) return { status: "BeforeSnapshot", snapshotSeqno: this.metaStart + 1 };
    if (seqno <= this.archivedTo) {
      const firstOnDisk = this.firstSeqnoOnDisk;
      if (seqno < firstOnDisk) return { status: "BeforeSnapshot", snapshotSeqno: this.metaStart + 1 };
      return { status: "Archived", from: archiveReadFrom(seqno, firstOnDisk) };
    }
    const signatureSeqno = firstAfter(this.signatureSeqnos, seqno);
    if (signatureSeqno === undefined || signatureSeqno > this._commitSeqno) return { status: "Pending" };
    const proof = this.tree.path(seqno - 1, signatureSeqno - 1);
    return buildReceipt(
      this.secrets,
      seqno,
      this.metaAt(seqno)!,
      proof,
      this.signatures.get(signatureSeqno)!,
    );
  }

  /**
   * The receipt of any committed transaction this node holds: from memory at once, or rebuilt
   * from the ledger files (`archive`) for one whose proof left memory (slower: a chunk read).
   */
  loadReceipt(view: number, seqno: number): ReceiptLookup | Promise<ReceiptLookup> {
    const found = this.receipt(view, seqno);
    if (found.status !== "Archived") return found;
    const archive = this.archive;
    if (!archive) {
      throw new LedgerStateError(
        `the proof of seqno ${seqno} left memory and this node has no ledger files to read`,
      );
    }
    return readThroughSignature(archive, found.from, seqno, this._commitSeqno).then((entries) =>
      this.receiptFromEntries(view, seqno, entries),
    );
  }

  /**
   * A receipt rebuilt from ledger entries read from `from` (as `receipt` named it) through the
   * signature after `seqno`; a receipt still in memory is served from there.
   */
  receiptFromEntries(view: number, seqno: number, entries: readonly DecodedEntry[]): ReceiptLookup {
    const found = this.receipt(view, seqno);
    if (found.status !== "Archived") return found;
    return receiptFromEntries({
      tree: this.tree,
      secrets: this.secrets,
      view,
      seqno,
      from: found.from,
      entries,
    });
  }
}
