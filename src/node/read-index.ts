import type { Raft } from "../consensus/index.ts";
import { NotPrimaryError } from "../ledger/index.ts";

/**
 * Linearizable reads without a write: the primary confirms with a quorum that it still leads
 * (read index) and returns the commit point a read must reflect.
 */
export class ReadIndex {
  /** Reads waiting for the primary to confirm it still leads. */
  private readonly pending = new Map<
    string,
    { resolve: (seqno: number) => void; reject: (e: Error) => void }
  >();
  private counter = 0;

  /** Rejects with NotPrimaryError on a node that is not, or stops being, the primary. */
  request(raft: Raft | undefined, process: () => void): Promise<number> {
    if (!raft?.canPropose) return Promise.reject(new NotPrimaryError("this node is not the primary"));
    const id = `read-${++this.counter}`;
    const point = new Promise<number>((resolve, reject) => this.pending.set(id, { resolve, reject }));
    raft.readIndex(id);
    process();
    return point;
  }

  /** Consensus answered read `requestId`: the commit point, or null if this node lost the lead. */
  ready(requestId: string, seqno: number | null): void {
    const pending = this.pending.get(requestId);
    if (!pending) return;
    this.pending.delete(requestId);
    if (seqno === null) pending.reject(new NotPrimaryError("this node stopped being the primary"));
    else pending.resolve(seqno);
  }

  /** The node stops: every waiting read fails. */
  abortAll(): void {
    for (const id of [...this.pending.keys()]) this.ready(id, null);
  }
}
