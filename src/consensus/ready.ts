import type { Outbound } from "./messages.ts";
import type { Entry, HardState, NodeId, Role } from "./types.ts";

export interface RoleChange {
  role: Role;
  view: number;
  /** The primary this node follows (itself when primary), or null if it knows none. */
  leader: NodeId | null;
}

/**
 * Everything Raft asks its node to do, gathered since the last `advance`. The node handles the
 * fields in this order:
 *
 * 1. `hardState`: write it durably (fsync) before sending any message of this Ready.
 * 2. `truncateAfter`: drop every entry after this seqno from the ledger (and roll the KV back).
 * 3. `entriesToPersist`: append them (they follow the truncation point, or the last entry handed
 *    out before); write in the background and report with `persisted(seqno, view)` when durable.
 * 4. `messages`, `snapshotsToSend`: send (after step 1).
 * 5. `commitSeqno`, `roleChange`, `readStates`, `readsRejected`: act on them.
 *
 * Then call `advance(ready)`.
 */
export interface Ready {
  hardState?: HardState;
  truncateAfter?: number;
  entriesToPersist: Entry[];
  messages: Outbound[];
  /** The new commit point, if it moved. Always a signature entry (or a snapshot point). */
  commitSeqno?: number;
  roleChange?: RoleChange;
  /** Backups that need entries this node compacted away: send them the snapshot at `seqno`. */
  snapshotsToSend: Array<{ to: NodeId; seqno: number }>;
  /** Confirmed read indexes: answer the read once the state machine has applied `seqno`. */
  readStates: Array<{ requestId: string; seqno: number }>;
  /** Reads this node cannot serve (not primary, or it lost leadership): retry elsewhere. */
  readsRejected: string[];
}

export function isEmptyReady(ready: Ready): boolean {
  return (
    ready.hardState === undefined &&
    ready.truncateAfter === undefined &&
    ready.entriesToPersist.length === 0 &&
    ready.messages.length === 0 &&
    ready.commitSeqno === undefined &&
    ready.roleChange === undefined &&
    ready.snapshotsToSend.length === 0 &&
    ready.readStates.length === 0 &&
    ready.readsRejected.length === 0
  );
}
