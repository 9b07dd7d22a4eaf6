import type { Logger } from "pino";
import type { LedgerState } from "../ledger/index.ts";
import { decodeSnapshot, type LedgerFiles, writeSnapshotFile } from "../ledger/index.ts";
import { NodeError } from "./node-error.ts";
import type { Replica } from "./replica.ts";
import { INSTALL_SNAPSHOT, type InstallSnapshot } from "./snapshot-message.ts";
import type { Snapshots } from "./snapshots.ts";

/** How long the primary waits for a backup to take a snapshot it sent. */
const SNAPSHOT_SEND_TIMEOUT_MS = 60_000;

/** What moving a snapshot between nodes needs of the node. */
export interface TransferHost {
  readonly log: Logger;
  readonly state: LedgerState;
  readonly files: LedgerFiles;
  readonly snapshots: Snapshots;
  replica(): Replica | undefined;
  serviceCertPem(): string;
  closing(): boolean;
  requestNode(to: string, message: unknown, timeoutMs: number): Promise<unknown>;
  /** Background work the node waits for when it stops. */
  track(work: Promise<unknown>): void;
  /** The commit point moved to an installed snapshot. */
  installedAt(seqno: number): void;
}

/**
 * Catch-up by snapshot (docs/consensus.md): the primary sends a backup that needs entries
 * consensus no longer holds the snapshot there; the backup checks and installs it.
 */
export class SnapshotTransfer {
  private installing = false;

  constructor(private readonly host: TransferHost) {}

  /** Primary: send `to` the snapshot at `seqno` (consensus's log start). */
  send(to: string, seqno: number): void {
    const host = this.host;
    const raft = host.replica()?.raft;
    if (!raft) return;
    const point = raft.logStart;
    const work = (async () => {
      const file = await host.snapshots.read(seqno);
      if (!file || point.seqno !== seqno) throw new NodeError(`no snapshot file at ${seqno}`);
      const message: InstallSnapshot = {
        kind: INSTALL_SNAPSHOT,
        seqno,
        view: point.view,
        config: point.config,
        evidenceSeqno: file.evidenceSeqno,
        bytes: file.bytes,
      };
      host.log.info({ to, seqno, bytes: file.bytes.length }, "sending a snapshot to a node that is behind");
      await host.requestNode(to, message, SNAPSHOT_SEND_TIMEOUT_MS);
    })();
    host.track(
      work.catch((e) => {
        host.log.warn({ to, seqno, err: e }, "could not send a snapshot; will try again");
        host.replica()?.raft.snapshotFailed(to);
        host.replica()?.process();
      }),
    );
  }

  /**
   * Backup: takes the primary's snapshot in place of its ledger. The snapshot is decoded and its
   * anchor checked (signed by a node and by the service) before anything changes; then the file
   * is written, the ledger files restart after it, and state and consensus move to it together.
   */
  async install(from: string, message: InstallSnapshot): Promise<{ installed: boolean }> {
    const host = this.host;
    const raft = host.replica()?.raft;
    if (!raft || host.closing()) throw new NodeError("this node is not running consensus");
    if (raft.leader !== from) throw new NodeError(`only the primary sends snapshots; ${from} is not it`);
    if (this.installing) throw new NodeError("already installing a snapshot");
    if (message.seqno <= raft.commitSeqno) return { installed: false };
    this.installing = true;
    try {
      const point = { seqno: message.seqno, view: message.view, config: message.config };
      if (host.state.lastSeqno >= message.seqno && host.state.viewOf(message.seqno) === message.view) {
        // This node holds that entry already: keep the file (it may have to send it one day as
        // primary) and tell consensus, which keeps the entries after it.
        await writeSnapshotFile(host.snapshots.dir, message.seqno, message.evidenceSeqno, message.bytes);
        raft.restoreSnapshot(point);
        host.replica()?.process();
        return { installed: false };
      }
      const decoded = decodeSnapshot(message.bytes, host.state.secrets);
      if (decoded.snapshot.version !== message.seqno || decoded.view !== message.view) {
        throw new NodeError(
          `the snapshot holds ${decoded.view}.${decoded.snapshot.version}, not ${message.view}.${message.seqno}`,
        );
      }
      const prepared = host.state.prepareSnapshot(decoded, host.serviceCertPem());
      if (prepared.config.join(",") !== [...message.config].sort().join(",")) {
        throw new NodeError("the snapshot's trusted nodes differ from the configuration sent with it");
      }
      await writeSnapshotFile(host.snapshots.dir, message.seqno, message.evidenceSeqno, message.bytes);
      // Consensus decides first (its role or view may have moved during the write); state and
      // ledger files follow only when it drops its log for the snapshot. The files restart at
      // once (synchronously), so entries replicated next go after the snapshot.
      if (host.closing() || raft.leader !== from) return { installed: false };
      const result = raft.restoreSnapshot(point);
      if (result !== "reset") {
        host.replica()?.process();
        return { installed: false };
      }
      host.state.installSnapshot(prepared);
      const restarted = host.files.restartAt(message.seqno + 1);
      host.snapshots.installed(message.seqno);
      host.installedAt(message.seqno);
      host.log.info(
        { seqno: message.seqno, view: message.view, from },
        "installed a snapshot from the primary",
      );
      host.replica()?.process();
      await restarted;
      return { installed: true };
    } finally {
      this.installing = false;
    }
  }
}
