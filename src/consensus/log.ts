import { ConsensusError, invariant } from "./assert.ts";
import type { Entry, NodeId, PersistedLog, SnapshotPoint } from "./types.ts";
import { configProblem, entriesProblem } from "./validate.ts";

export interface ConfigChange {
  seqno: number;
  nodes: NodeId[];
}

/**
 * The in-memory log: a snapshot point (where it starts) and the entries after it. Besides the
 * entries it keeps three small indexes that Raft asks about often: where each view starts (fast
 * backtracking), where the signatures are (commit points) and where the configurations change.
 */
export class RaftLog {
  private point: SnapshotPoint;
  private items: Entry[] = [];
  private viewStarts: Array<{ view: number; first: number }> = [];
  private signatures: number[] = [];
  private configChanges: ConfigChange[] = [];

  constructor(persisted: PersistedLog) {
    const { start, entries } = persisted;
    // An empty configuration is allowed: a node that is joining knows no configuration yet.
    const problem =
      Array.isArray(start.config) && start.config.length === 0 ? null : configProblem(start.config);
    if (problem) throw new ConsensusError(`log start: ${problem}`);
    if (!Number.isSafeInteger(start.seqno) || start.seqno < 0 || !Number.isSafeInteger(start.view)) {
      throw new ConsensusError("log start needs an integer seqno and view");
    }
    const entriesIssue = entriesProblem(entries, start.seqno + 1, start.view, Number.MAX_SAFE_INTEGER);
    if (entriesIssue) throw new ConsensusError(`persisted log: ${entriesIssue}`);
    this.point = { seqno: start.seqno, view: start.view, config: [...start.config] };
    this.append(entries);
  }

  get start(): SnapshotPoint {
    return this.point;
  }

  get lastSeqno(): number {
    return this.point.seqno + this.items.length;
  }

  get lastView(): number {
    return this.items.at(-1)?.view ?? this.point.view;
  }

  /** The view of the entry at `seqno`; undefined if the log does not know it (compacted or beyond). */
  viewAt(seqno: number): number | undefined {
    if (seqno === this.point.seqno) return this.point.view;
    return this.entry(seqno)?.view;
  }

  entry(seqno: number): Entry | undefined {
    if (seqno <= this.point.seqno) return undefined;
    return this.items[seqno - this.point.seqno - 1];
  }

  /** Entries `from`..`to` inclusive, clipped to what the log holds. */
  slice(from: number, to: number): Entry[] {
    const lo = Math.max(from, this.point.seqno + 1) - this.point.seqno - 1;
    const hi = Math.min(to, this.lastSeqno) - this.point.seqno;
    return hi > lo ? this.items.slice(lo, hi) : [];
  }

  append(entries: readonly Entry[]): void {
    for (const entry of entries) {
      invariant(entry.seqno === this.lastSeqno + 1, () => {
        return `append of seqno ${entry.seqno} to a log ending at ${this.lastSeqno}`;
      });
      invariant(entry.view >= this.lastView, () => {
        return `append of view ${entry.view} after view ${this.lastView} at seqno ${entry.seqno}`;
      });
      if (this.items.length === 0 || entry.view !== this.lastView) {
        this.viewStarts.push({ view: entry.view, first: entry.seqno });
      }
      this.items.push(entry);
      if (entry.isSignature) this.signatures.push(entry.seqno);
      if (entry.config) this.configChanges.push({ seqno: entry.seqno, nodes: [...entry.config] });
    }
  }

  /** Removes every entry after `seqno`. Returns how many went. */
  truncateAfter(seqno: number): number {
    invariant(seqno >= this.point.seqno, `truncation to ${seqno} is below the log start ${this.point.seqno}`);
    const removed = this.lastSeqno - seqno;
    if (removed <= 0) return 0;
    this.items.length = seqno - this.point.seqno;
    while (this.viewStarts.length > 0 && this.viewStarts.at(-1)!.first > seqno) this.viewStarts.pop();
    while (this.signatures.length > 0 && this.signatures.at(-1)! > seqno) this.signatures.pop();
    while (this.configChanges.length > 0 && this.configChanges.at(-1)!.seqno > seqno)
      this.configChanges.pop();
    return removed;
  }

  /** Drops the entries up to `seqno` (covered by a snapshot there); the log then starts at it. */
  compact(seqno: number): void {
    if (seqno <= this.point.seqno) return;
    invariant(seqno <= this.lastSeqno, `compaction to ${seqno} beyond the last seqno ${this.lastSeqno}`);
    const point: SnapshotPoint = { seqno, view: this.viewAt(seqno)!, config: this.configAt(seqno) };
    this.items = this.items.slice(seqno - this.point.seqno);
    this.point = point;
    this.reindex();
  }

  /** Replaces the whole log with an empty one starting at `point` (a snapshot was installed). */
  resetTo(point: SnapshotPoint): void {
    this.point = { seqno: point.seqno, view: point.view, config: [...point.config] };
    this.items = [];
    this.reindex();
  }

  private reindex(): void {
    const entries = this.items;
    this.items = [];
    this.viewStarts = [];
    this.signatures = [];
    this.configChanges = [];
    this.append(entries);
  }

  /** True if a log ending at (lastSeqno, lastView) is at least as up to date as this one. */
  isUpToDate(lastSeqno: number, lastView: number): boolean {
    return lastView > this.lastView || (lastView === this.lastView && lastSeqno >= this.lastSeqno);
  }

  /** First seqno of `view` in this log (entries after the start only), if it has any. */
  firstSeqnoOfView(view: number): number | undefined {
    return this.viewStarts.find((s) => s.view === view)?.first;
  }

  /**
   * The highest seqno at or before `atMost` whose view is at most `view`, never below the log
   * start. Fast backtracking uses it to skip a whole view per round trip.
   */
  lastSeqnoWithViewAtMost(view: number, atMost: number): number {
    const upTo = Math.min(atMost, this.lastSeqno);
    for (let i = this.viewStarts.length - 1; i >= 0; i--) {
      const run = this.viewStarts[i]!;
      if (run.first > upTo) continue;
      if (run.view <= view) {
        const end = i + 1 < this.viewStarts.length ? this.viewStarts[i + 1]!.first - 1 : this.lastSeqno;
        return Math.min(end, upTo);
      }
    }
    return this.point.seqno;
  }

  /** The highest signature seqno in (after, atMost], if any. */
  lastSignatureIn(after: number, atMost: number): number | undefined {
    const sigs = this.signatures;
    let lo = 0;
    let hi = sigs.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (sigs[mid]! <= atMost) lo = mid + 1;
      else hi = mid;
    }
    const found = sigs[lo - 1];
    return found !== undefined && found > after ? found : undefined;
  }

  /** The configuration in effect at `seqno` (the last one appended at or before it). */
  configAt(seqno: number): NodeId[] {
    for (let i = this.configChanges.length - 1; i >= 0; i--) {
      const change = this.configChanges[i]!;
      if (change.seqno <= seqno) return change.nodes;
    }
    return this.point.config;
  }

  /** The configuration in effect at the end of the log. */
  latestConfig(): NodeId[] {
    return this.configChanges.at(-1)?.nodes ?? this.point.config;
  }

  /**
   * The configurations a decision must satisfy: the one in effect at the commit point and every
   * one appended after it. A quorum is needed in each.
   */
  activeConfigs(commitSeqno: number): ConfigChange[] {
    const later = this.configChanges.filter((c) => c.seqno > commitSeqno);
    const committed = this.configChanges.filter((c) => c.seqno <= commitSeqno).at(-1) ?? {
      seqno: this.point.seqno,
      nodes: this.point.config,
    };
    // An empty configuration is the state of a log before its first configuration entry (a
    // service being bootstrapped, a node about to join): it constrains nothing.
    return [committed, ...later].filter((c) => c.nodes.length > 0);
  }

  /** Config changes in (after, upTo]. */
  configChangesIn(after: number, upTo: number): ConfigChange[] {
    return this.configChanges.filter((c) => c.seqno > after && c.seqno <= upTo);
  }
}
