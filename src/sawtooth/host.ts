import type { Store } from "../kv/index.ts";

/** What the Sawtooth executor needs of the node it runs on; wired once, where the node starts. */
export interface SawtoothHost {
  readonly isPrimary: boolean;
  readonly store: Store;
  /** "view.seqno" of a seqno of this node's ledger. */
  txIdOf(seqno: number): string;
  txStatus(view: number, seqno: number): "Unknown" | "Pending" | "Committed" | "Invalid";
  waitForCommit(seqno: number): Promise<void>;
}

/** The shape of a running Coco node that a host is made from (structural: no import of src/node). */
export interface NodeLike {
  readonly isPrimary: boolean;
  readonly state: {
    readonly store: Store;
    txIdOf(seqno: number): string;
    txStatus(view: number, seqno: number): "Unknown" | "Pending" | "Committed" | "Invalid";
    waitForCommit(seqno: number): Promise<void>;
  };
}

export function nodeHost(node: NodeLike): SawtoothHost {
  return {
    get isPrimary() {
      return node.isPrimary;
    },
    get store() {
      return node.state.store;
    },
    txIdOf: (seqno) => node.state.txIdOf(seqno),
    txStatus: (view, seqno) => node.state.txStatus(view, seqno),
    waitForCommit: (seqno) => node.state.waitForCommit(seqno),
  };
}
