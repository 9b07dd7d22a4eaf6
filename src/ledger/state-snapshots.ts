import { LedgerStateError } from "./errors.ts";
import { leafOf } from "./evidence.ts";
import { checkSnapshot, type DecodedSnapshot } from "./snapshot-adopt.ts";
import { encodeSnapshotFrom, type SnapshotSource } from "./snapshot-encoder.ts";
import { LedgerReceipts } from "./state-receipts.ts";
import { TxHistory } from "./tx-history.ts";

/**
 * The ledger state's third layer (see state-base.ts): snapshots, what one taken here is made of,
 * and a state that starts from one (checked against its anchor's signatures) or takes one in
 * place of everything it had.
 */
export class LedgerSnapshots extends LedgerReceipts {
  /**
   * What the snapshot at the newest signature entry, `seqno`, is made of: the store as of that
   * entry (an immutable version, readable after the state moves on) and the anchor a node needs to
   * carry on from it without the ledger before it. Taken at the signature or at the entry right
   * after it (the snapshot's announcement); encoded later, perhaps in slices (SnapshotEncoder).
   * The bytes depend only on the ledger up to `seqno`, so every node that holds it makes the same
   * file.
   */
  snapshotSourceAt(seqno: number): SnapshotSource {
    if (this.lastSignatureFrame?.seqno !== seqno) {
      throw new LedgerStateError(`seqno ${seqno} is not the newest signature transaction`);
    }
    return {
      store: this._store.versionAt(seqno),
      view: this.viewOf(seqno),
      anchor: {
        treeFrontier: this.tree.frontier(seqno - 1),
        viewHistory: this.viewStarts.filter(([, first]) => first <= seqno).map(([v, first]) => [v, first]),
        signatureFrame: this.lastSignatureFrame.frame,
      },
    };
  }

  /** The snapshot file at the newest signature entry, `seqno`, encoded at once. */
  encodeSnapshotAt(seqno: number): Uint8Array {
    return encodeSnapshotFrom(this.snapshotSourceAt(seqno), this.secrets).bytes;
  }

  /** Starts this (empty) state from a snapshot and its anchor, checking the anchor's signatures. */
  protected adoptSnapshot(decoded: DecodedSnapshot, serviceCertPem: string | undefined): void {
    const { seqno, store, tree, entry, signature, signers } = checkSnapshot(
      decoded,
      this.secrets,
      serviceCertPem,
    );
    const { anchor, view } = decoded;
    this.signers = signers;
    this._store = store;
    this.tree = tree;
    this.metaStart = seqno - 1;
    this.viewStarts = anchor.viewHistory.map(([v, first]) => [v, first]);
    this._view = Math.max(this._view, view);
    this.tree.append(leafOf(entry.writeSetDigest, entry.commitEvidenceDigest, entry.claimsDigest));
    this.meta = new TxHistory();
    this.meta.push({
      view: entry.view,
      secretVersion: entry.secretVersion,
      writeSetDigest: entry.writeSetDigest,
      claimsDigest: entry.claimsDigest,
      isSignature: true,
    });
    this.recordSignature(seqno, signature.record, signature.cose);
    this.lastSignatureFrame = { seqno, frame: anchor.signatureFrame };
    this._commitSeqno = seqno;
    this.startConfig = this.trustedNodes();
  }

  /**
   * Takes `fresh` (a state that adopted a snapshot) in place of everything this state had; the
   * commit waits and listeners stay this state's.
   */
  protected takeOver(fresh: LedgerSnapshots): void {
    this._store = fresh._store;
    this.tree = fresh.tree;
    this.meta = fresh.meta;
    this.metaStart = fresh.metaStart;
    this.viewStarts = fresh.viewStarts;
    this.signatures.clear();
    this.signatureSeqnos.length = 0;
    this.signers = fresh.signers;
    for (const [seqno, signature] of fresh.signatures)
      this.recordSignature(seqno, signature.record, signature.cose);
    this.lastSignatureFrame = fresh.lastSignatureFrame;
    this.configs.clear();
    this.startConfig = fresh.startConfig;
    this._view = Math.max(this._view, fresh._view);
    this._commitSeqno = fresh._commitSeqno;
    this.setTxSinceSignature(0);
    this.nodesInfoVersion++;
    this.checkEnds();
    this.commitWaits.replaced(this._commitSeqno);
  }
}
