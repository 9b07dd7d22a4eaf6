import { invariant } from "./assert.ts";

export type ProgressState = "probe" | "replicate" | "snapshot";

/**
 * What the primary knows about one backup, and the flow control for sending it entries.
 *
 * - probe: we do not know where the backup's log matches ours; one AppendEntries at a time.
 * - replicate: it is keeping up; batches go out optimistically, up to a window in flight.
 * - snapshot: it needs entries we no longer hold; we wait for it to install a snapshot.
 */
export class Progress {
  /** Highest seqno known to match our log AND be durable on the backup. Never decreases. */
  match = 0;
  /** Next seqno to send. */
  next: number;
  state: ProgressState = "probe";
  /** In probe: an AppendEntries is out and we wait for its answer (or a heartbeat answer). */
  probeSent = false;
  /** In probe: send an AppendEntries even if there is nothing new, to learn where logs match. */
  mustProbe = true;
  /** Last seqno of each batch in flight, oldest first. */
  inflight: number[] = [];
  /** Heard from in the current CheckQuorum period. */
  recentActive = false;
  /** In snapshot: the snapshot point we asked the node to send, and for how long we have waited. */
  pendingSnapshot = 0;
  snapshotTicks = 0;
  /** Highest read-index round the backup has answered. */
  ackedRound = 0;
  /** The backup's own commit seqno, as it last told us. */
  commitKnown = 0;
  /** Heartbeat answers in a row that showed no progress while batches were in flight. */
  stalled = 0;
  lastReportedMatch = -1;
  /** Set when a committed configuration removed this backup: keep it informed until it learns. */
  removedAt: number | undefined;
  removedTicks = 0;

  constructor(next: number) {
    this.next = next;
  }

  becomeProbe(next: number): void {
    this.state = "probe";
    this.next = Math.max(next, this.match + 1);
    this.probeSent = false;
    this.mustProbe = true;
    this.inflight = [];
    this.stalled = 0;
  }

  becomeReplicate(): void {
    this.state = "replicate";
    this.next = Math.max(this.next, this.match + 1);
    this.probeSent = false;
    this.mustProbe = false;
    this.inflight = [];
    this.stalled = 0;
  }

  becomeSnapshot(seqno: number): void {
    this.state = "snapshot";
    this.pendingSnapshot = seqno;
    this.snapshotTicks = 0;
    this.inflight = [];
  }

  /** Records that a batch ending at `last` went out. */
  sent(last: number, maxInflight: number): void {
    if (this.state === "replicate") {
      invariant(this.inflight.length < maxInflight, "sent past the in-flight window");
      this.inflight.push(last);
      this.next = last + 1;
    } else {
      // mustProbe stays set until an answer shows where the logs match.
      this.probeSent = true;
    }
  }

  /** The backup acknowledged entries up to `seqno`: those batches are no longer in flight. */
  acknowledged(seqno: number): void {
    let drop = 0;
    while (drop < this.inflight.length && this.inflight[drop]! <= seqno) drop++;
    if (drop > 0) this.inflight.splice(0, drop);
  }

  updateMatch(durable: number): boolean {
    if (durable <= this.match) return false;
    this.match = durable;
    if (this.next <= durable) this.next = durable + 1;
    return true;
  }

  canSend(maxInflight: number): boolean {
    if (this.state === "snapshot") return false;
    if (this.state === "probe") return !this.probeSent;
    return this.inflight.length < maxInflight;
  }
}
