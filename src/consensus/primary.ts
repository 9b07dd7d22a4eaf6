import { invariant } from "./assert.ts";
import type { Settings } from "./config.ts";
import type { RaftLog } from "./log.ts";
import type { AppendEntries, AppendEntriesResponse, HeartbeatResponse, Message } from "./messages.ts";
import { Progress } from "./progress.ts";
import { hasQuorum, quorumValue } from "./quorum.ts";
import type { Entry, NodeId } from "./types.ts";

/** What the primary's state needs from the Raft it belongs to. */
export interface PrimaryHost {
  readonly id: NodeId;
  readonly log: RaftLog;
  readonly settings: Settings;
  view(): number;
  commit(): number;
  durable(): number;
  votingConfigs(): NodeId[][];
  members(): Set<NodeId>;
  removalCommitted(): boolean;
  send(to: NodeId, message: Message): void;
  setCommit(seqno: number): void;
  sendSnapshot(to: NodeId, seqno: number): void;
  readConfirmed(requestId: string, seqno: number): void;
  readRejected(requestId: string): void;
  violation(reason: string): void;
}

export interface PeerStatus {
  match: number;
  next: number;
  state: Progress["state"];
  inflight: number;
}

interface PendingRead {
  requestId: string;
  seqno: number;
  round: number;
}

const NO_ENTRIES: Entry[] = [];

/**
 * Everything a primary keeps for its view and drops when it steps down: one Progress per backup
 * (replication and flow control), commit counting, read-index rounds and the hand-over of a
 * retiring primary.
 */
export class Primary {
  readonly progress = new Map<NodeId, Progress>();
  private heartbeatElapsed = 0;
  private reads: PendingRead[] = [];
  private readsBeforeCommit: string[] = [];
  private round = 0;
  private roundRequested = false;
  private handoverTicks = 0;
  private handoverSentTo: NodeId | null = null;

  constructor(private readonly host: PrimaryHost) {
    this.syncProgress();
  }

  tick(): void {
    const { settings } = this.host;
    this.heartbeatElapsed++;
    this.handoverTicks++;
    for (const [id, pr] of this.progress) {
      if (pr.state === "snapshot" && ++pr.snapshotTicks >= settings.snapshotRetryTicks) {
        pr.becomeProbe(pr.match + 1);
      }
      if (pr.removedAt !== undefined && ++pr.removedTicks >= 10 * settings.electionTicksMax) {
        this.progress.delete(id);
      }
    }
    if (this.heartbeatElapsed >= settings.heartbeatTicks) {
      this.heartbeatElapsed = 0;
      this.broadcastHeartbeat();
    }
  }

  /** CheckQuorum: has a quorum of every active configuration been heard from since last time? */
  quorumActive(): boolean {
    const { id } = this.host;
    const active = hasQuorum(
      this.host.votingConfigs(),
      (peer) => peer === id || this.progress.get(peer)?.recentActive === true,
    );
    for (const pr of this.progress.values()) pr.recentActive = false;
    return active;
  }

  /** The primary steps down: reads it has not confirmed can no longer be. */
  stepDown(): void {
    for (const read of this.reads) this.host.readRejected(read.requestId);
    for (const requestId of this.readsBeforeCommit) this.host.readRejected(requestId);
    this.reads = [];
    this.readsBeforeCommit = [];
  }

  /** True while this primary replicates to `id` (a member, or a removed node not yet let go). */
  tracks(id: NodeId): boolean {
    return this.progress.has(id);
  }

  peers(): Record<NodeId, PeerStatus> {
    const peers: Record<NodeId, PeerStatus> = {};
    for (const [id, pr] of this.progress) {
      peers[id] = { match: pr.match, next: pr.next, state: pr.state, inflight: pr.inflight.length };
    }
    return peers;
  }

  /** Keeps one Progress per node we replicate to: every member of an active configuration. */
  syncProgress(): void {
    const members = this.host.members();
    for (const id of members) {
      if (id === this.host.id) continue;
      const pr = this.progress.get(id);
      if (!pr) this.progress.set(id, new Progress(this.host.log.lastSeqno + 1));
      else pr.removedAt = undefined;
    }
    for (const [id, pr] of this.progress) {
      if (members.has(id)) continue;
      // Removed by a committed configuration: keep it informed until it knows, so it retires.
      if (pr.removedAt === undefined) {
        pr.removedAt = this.host.commit();
        pr.removedTicks = 0;
      }
      if (pr.commitKnown >= pr.removedAt) this.progress.delete(id);
    }
  }

  snapshotFailed(to: NodeId): void {
    const pr = this.progress.get(to);
    if (pr?.state === "snapshot") pr.becomeProbe(pr.match + 1);
  }

  // ---------------------------------------------------------------------------------------------
  // Answers from backups

  onAppendResponse(m: AppendEntriesResponse): void {
    const pr = this.progress.get(m.from);
    if (!pr) return;
    const { log } = this.host;
    pr.recentActive = true;
    pr.commitKnown = Math.max(pr.commitKnown, m.commitSeqno);
    if (m.success) {
      if (m.matchSeqno > log.lastSeqno || m.durableSeqno > log.lastSeqno) {
        this.host.violation(`${m.from} acknowledged entries this primary never sent`);
        return;
      }
      pr.acknowledged(m.matchSeqno);
      if (pr.state === "snapshot") {
        if (m.matchSeqno >= pr.pendingSnapshot) pr.becomeProbe(m.matchSeqno + 1);
      } else {
        pr.next = Math.max(pr.next, m.matchSeqno + 1);
        if (pr.state === "probe") pr.becomeReplicate();
      }
      if (pr.updateMatch(m.durableSeqno)) this.maybeCommit();
      if (pr.removedAt !== undefined) this.syncProgress();
      return;
    }
    // A rejection that answers an AppendEntries sent before the last change of plan is stale.
    if (pr.state === "snapshot") return;
    if (pr.state === "replicate" && m.rejectedPrev <= pr.match) return;
    if (pr.state === "probe" && m.rejectedPrev !== pr.next - 1) return;
    pr.becomeProbe(this.nextAfterRejection(m));
  }

  /**
   * Where to probe next after a rejection, from the backup's hint. If it is too short, continue
   * after its last entry. Otherwise its entry at `rejectedPrev` has view V, starting at F in its
   * log: jump back past all of V in one step. If we also hold entries of V, they match the
   * backup's (a view's entries come from one primary), so our last V entry is the match point;
   * if we hold none, the logs differ from F on.
   */
  private nextAfterRejection(m: AppendEntriesResponse): number {
    if (m.conflictView === 0) return Math.min(m.rejectedPrev, m.lastSeqno + 1);
    const { log } = this.host;
    let probe = log.lastSeqnoWithViewAtMost(m.conflictView, m.rejectedPrev - 1);
    if (log.viewAt(probe) !== m.conflictView) probe = Math.min(probe, m.conflictFirst - 1);
    return probe + 1;
  }

  onHeartbeatResponse(m: HeartbeatResponse): void {
    const pr = this.progress.get(m.from);
    if (!pr) return;
    const { log } = this.host;
    pr.recentActive = true;
    pr.commitKnown = Math.max(pr.commitKnown, m.commitSeqno);
    pr.ackedRound = Math.max(pr.ackedRound, m.round);
    if (m.durableSeqno <= log.lastSeqno && pr.updateMatch(m.durableSeqno)) this.maybeCommit();
    if (pr.state === "probe") {
      pr.probeSent = false;
    } else if (pr.state === "replicate") {
      // The answer to a batch may be lost while the batch arrived: the heartbeat says so.
      if (m.matchSeqno <= log.lastSeqno) pr.acknowledged(m.matchSeqno);
      // A batch lost on the way leaves a gap the backup cannot fill by itself: if it stays
      // behind what we sent for several heartbeats, go back to probing.
      if (m.matchSeqno < pr.next - 1 && m.matchSeqno === pr.lastReportedMatch) pr.stalled++;
      else pr.stalled = 0;
      pr.lastReportedMatch = m.matchSeqno;
      if (pr.stalled >= 3) pr.becomeProbe(m.matchSeqno + 1);
    }
    if (pr.removedAt !== undefined) this.syncProgress();
    this.confirmReads();
  }

  // ---------------------------------------------------------------------------------------------
  // Sending

  /** Sends what each backup can take now: entries in batches, within its in-flight window. */
  flush(): void {
    if (this.roundRequested) {
      this.roundRequested = false;
      this.round++;
      this.broadcastHeartbeat();
    }
    for (const [id, pr] of this.progress) {
      while (this.sendAppend(id, pr)) {
        if (pr.state !== "replicate") break;
      }
    }
    this.confirmReads();
    this.handOver();
  }

  private broadcastHeartbeat(): void {
    const commitSeqno = this.host.commit();
    for (const to of this.progress.keys()) {
      this.host.send(to, {
        from: this.host.id,
        to,
        view: this.host.view(),
        type: "heartbeat",
        commitSeqno,
        round: this.round,
      });
    }
  }

  private sendAppend(to: NodeId, pr: Progress): boolean {
    const { log, settings } = this.host;
    if (!pr.canSend(settings.maxInflight)) return false;
    const prevSeqno = pr.next - 1;
    const prevView = log.viewAt(prevSeqno);
    if (prevView === undefined) {
      invariant(prevSeqno < log.start.seqno, `backup ${to} is ahead of the primary's log`);
      pr.becomeSnapshot(log.start.seqno);
      this.host.sendSnapshot(to, log.start.seqno);
      return false;
    }
    const hasNew = pr.next <= log.lastSeqno;
    if (!hasNew && !(pr.state === "probe" && pr.mustProbe)) return false;
    const entries = hasNew ? this.batchFrom(pr.next) : NO_ENTRIES;
    const message: AppendEntries = {
      from: this.host.id,
      to,
      view: this.host.view(),
      type: "append_entries",
      prevSeqno,
      prevView,
      entries,
      commitSeqno: this.host.commit(),
    };
    this.host.send(to, message);
    pr.sent(prevSeqno + entries.length, settings.maxInflight);
    return true;
  }

  private batchFrom(next: number): Entry[] {
    const { log, settings } = this.host;
    const candidates = log.slice(next, next + settings.maxBatchEntries - 1);
    let bytes = 0;
    for (let i = 0; i < candidates.length; i++) {
      bytes += candidates[i]!.data.length;
      if (bytes > settings.maxBatchBytes && i > 0) return candidates.slice(0, i);
    }
    return candidates;
  }

  // ---------------------------------------------------------------------------------------------
  // Commit

  /** Commits the last signature of this view that a quorum of every active configuration holds. */
  maybeCommit(): void {
    const { id, log, settings } = this.host;
    for (;;) {
      const commit = this.host.commit();
      const reached = quorumValue(this.host.votingConfigs(), (peer) =>
        peer === id ? this.host.durable() : (this.progress.get(peer)?.match ?? 0),
      );
      if (reached <= commit) return;
      const { commitNonSignature, commitEarlierView } = settings.unsafe;
      const target = commitNonSignature ? reached : log.lastSignatureIn(commit, reached);
      if (target === undefined) return;
      // As in Raft, only an entry of the current view is committed by counting copies; the
      // entries before it are committed with it.
      if (log.viewAt(target) !== this.host.view() && !commitEarlierView) return;
      this.host.setCommit(target);
    }
  }

  /** The commit point moved (the host already recorded it). */
  committed(seqno: number): void {
    this.syncProgress();
    if (this.host.log.viewAt(seqno) === this.host.view() && this.readsBeforeCommit.length > 0) {
      const waiting = this.readsBeforeCommit;
      this.readsBeforeCommit = [];
      for (const requestId of waiting) this.startRead(requestId);
    }
  }

  // ---------------------------------------------------------------------------------------------
  // Read index

  readIndex(requestId: string): void {
    if (this.host.log.viewAt(this.host.commit()) !== this.host.view()) {
      // Until it commits in its own view a new primary may not know the latest commit point.
      this.readsBeforeCommit.push(requestId);
      return;
    }
    this.startRead(requestId);
  }

  private startRead(requestId: string): void {
    if (this.host.removalCommitted()) {
      this.host.readRejected(requestId);
      return;
    }
    // The next heartbeat round confirms it; reads that arrive together share that round.
    this.reads.push({ requestId, seqno: this.host.commit(), round: this.round + 1 });
    this.roundRequested = true;
  }

  private confirmReads(): void {
    if (this.reads.length === 0) return;
    const configs = this.host.votingConfigs();
    let confirmed = 0;
    for (const read of this.reads) {
      const ok =
        this.host.settings.unsafe.readWithoutQuorum === true ||
        hasQuorum(
          configs,
          (peer) => peer === this.host.id || (this.progress.get(peer)?.ackedRound ?? 0) >= read.round,
        );
      if (!ok) break;
      this.host.readConfirmed(read.requestId, read.seqno);
      confirmed++;
    }
    if (confirmed > 0) this.reads.splice(0, confirmed);
  }

  // ---------------------------------------------------------------------------------------------
  // Retirement hand-over

  /**
   * A primary whose removal has committed takes no more proposals and hands over: once a member
   * of the new configuration holds its whole log durably, it tells that one to campaign now.
   */
  private handOver(): void {
    if (!this.host.removalCommitted()) return;
    if (this.handoverSentTo !== null && this.handoverTicks < this.host.settings.electionTicksMin) return;
    const { log } = this.host;
    let best: NodeId | null = null;
    for (const id of log.latestConfig()) {
      const pr = this.progress.get(id);
      if (pr && pr.match === log.lastSeqno && (best === null || id < best)) best = id;
    }
    if (best === null) return;
    this.handoverSentTo = best;
    this.handoverTicks = 0;
    this.host.send(best, { from: this.host.id, to: best, view: this.host.view(), type: "timeout_now" });
  }
}
