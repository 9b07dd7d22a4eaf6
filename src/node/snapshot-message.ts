import { NodeError } from "./node-error.ts";

/** The node-to-node request that carries a snapshot from the primary to a backup that is behind. */
export const INSTALL_SNAPSHOT = "coco.install_snapshot";

export interface InstallSnapshot {
  kind: typeof INSTALL_SNAPSHOT;
  seqno: number;
  /** View of the snapshot's signature entry. */
  view: number;
  /** The voting configuration at the snapshot, as consensus has it. */
  config: string[];
  /** The entry after it that records the snapshot's digest (names the file). */
  evidenceSeqno: number;
  bytes: Uint8Array;
}

const isCount = (v: unknown): v is number => Number.isSafeInteger(v) && (v as number) >= 0;

/** Checks the shape of an install request from another node; the bytes are checked on install. */
export function parseInstallSnapshot(message: unknown): InstallSnapshot {
  const m = message as Partial<InstallSnapshot>;
  if (
    !isCount(m.seqno) ||
    m.seqno < 1 ||
    !isCount(m.view) ||
    !isCount(m.evidenceSeqno) ||
    m.evidenceSeqno <= m.seqno ||
    !Array.isArray(m.config) ||
    m.config.length === 0 ||
    !m.config.every((id) => typeof id === "string") ||
    !(m.bytes instanceof Uint8Array)
  ) {
    throw new NodeError("malformed snapshot install request");
  }
  return m as InstallSnapshot;
}
