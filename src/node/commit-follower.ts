import type { Logger } from "pino";
import type { Raft } from "../consensus/index.ts";
import type { LedgerFiles } from "../ledger/index.ts";
import type { Snapshots } from "./snapshots.ts";
import type { StateFiles } from "./state-files.ts";

/** What follows the commit point needs of its node. */
export interface CommitFollowerHost {
  log: Logger;
  stateFiles: StateFiles;
  files: LedgerFiles;
  snapshots: () => Snapshots;
  raft: () => Raft | undefined;
}

/**
 * The file work that follows the commit point: the commit hint, committed chunk names, snapshot
 * files, and consensus's log compacted to the older kept snapshot. The work runs in the
 * background; `settled` waits for all of it (a node waits before it closes its files).
 */
export class CommitFollower {
  private readonly background = new Set<Promise<unknown>>();
  /** The commit point noted last. */
  private noted = 0;

  constructor(private readonly host: CommitFollowerHost) {}

  committed(commit: number): void {
    const { log, stateFiles, files } = this.host;
    // A commit that settles a configuration change is written to the commit hint at once (see
    // StateFiles.saveCommitHint): a restarted node counts every change after its hint as pending.
    const raft = this.host.raft();
    stateFiles.noteCommit(commit, raft?.configChangedIn(this.noted, commit) ?? false);
    this.noted = commit;
    this.track(
      files
        .markCommitted(commit)
        .catch((e) => log.error({ err: e }, "could not mark ledger chunks committed")),
    );
    this.track(
      this.host
        .snapshots()
        .committed(commit)
        .then((compactTo) => {
          // Consensus forgets entries before the older snapshot kept; a node that needs them gets that snapshot.
          const raft = this.host.raft();
          if (
            compactTo !== undefined &&
            raft &&
            compactTo > raft.logStart.seqno &&
            compactTo <= raft.commitSeqno
          ) {
            raft.compact(compactTo);
          }
        })
        .catch((e) => log.error({ err: e }, "could not write a snapshot")),
    );
  }

  /** Keeps `work` until it settles, so that `settled` can wait for it. */
  track(work: Promise<unknown>): void {
    this.background.add(work);
    work.finally(() => this.background.delete(work));
  }

  async settled(): Promise<void> {
    await Promise.all(this.background);
  }
}
