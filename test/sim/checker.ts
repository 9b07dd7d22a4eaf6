import type { Entry, NodeId, SnapshotPoint } from "../../src/consensus/index.ts";
import { decodePayload, entryDigest, Kv, sameState } from "./kv.ts";
import type { Observer, SimNode } from "./node.ts";

/** A broken safety property: the simulation stops at the first one. */
export class SafetyViolation extends Error {
  override name = "SafetyViolation";
}

function fail(message: string): never {
  throw new SafetyViolation(message);
}

/**
 * The safety properties, checked as the simulation runs:
 *
 * - at most one primary per view;
 * - every commit point is a signature entry;
 * - committed entries are the same on every node (a global record of seqno -> digest; a
 *   committed entry is never lost or changed), and every new primary's log holds all of them;
 * - every node's state machine equals the replay of the committed log up to what it applied;
 * - no node ever saw a well-formed message that breaks the protocol (Raft counts those);
 * - the ledger a node wrote agrees with Raft's log.
 */
export class Checker implements Observer {
  private readonly primaries = new Map<number, NodeId>();
  private readonly digests: string[] = [""];
  /** The view of the primary that first committed each seqno. */
  private readonly commitViews: number[] = [0];
  private readonly reference = new Kv();
  /** The reference state after each committed signature (where nodes apply up to). */
  private readonly states = new Map<number, Map<string, string>>([[0, new Map()]]);
  readonly stats = { elections: 0, commits: 0, snapshotsInstalled: 0 };
  /** When each client write first committed, by "client:number" (request id without attempt). */
  readonly writeCommitTimes = new Map<string, number>();

  constructor(private readonly now: () => number) {}

  get committedSeqno(): number {
    return this.digests.length - 1;
  }

  primary(node: SimNode, view: number): void {
    this.stats.elections++;
    const other = this.primaries.get(view);
    if (other !== undefined && other !== node.id)
      fail(`two primaries in view ${view}: ${other} and ${node.id}`);
    this.primaries.set(view, node.id);
    // Leader completeness: the new primary holds every entry committed in an earlier view
    // (except what it compacted into a snapshot). A primary of an older view may still be
    // elected late, from delayed votes; it cannot commit anything, so it is not checked.
    const raft = node.raft!;
    for (let seqno = raft.logStart.seqno + 1; seqno <= this.committedSeqno; seqno++) {
      if (this.commitViews[seqno]! >= view) continue;
      const entry = raft.entry(seqno);
      if (!entry || entryDigest(entry) !== this.digests[seqno]) {
        fail(
          `${node.id} became primary of view ${view} without committed entry ${seqno} ` +
            `(has ${entry ? entryDigest(entry) : "nothing"}, committed ${this.digests[seqno]})`,
        );
      }
    }
  }

  committed(node: SimNode, entry: Entry): void {
    const digest = entryDigest(entry);
    const known = this.digests[entry.seqno];
    if (known !== undefined) {
      if (known !== digest)
        fail(`${node.id} committed ${digest} at ${entry.seqno}, where ${known} was committed`);
      return;
    }
    if (entry.seqno !== this.digests.length)
      fail(`${node.id} committed ${entry.seqno} before ${this.digests.length}`);
    this.digests.push(digest);
    this.commitViews.push(node.raft!.view);
    this.stats.commits++;
    const payload = decodePayload(entry.data);
    if (payload.type === "write") {
      const key = payload.requestId.slice(0, payload.requestId.lastIndexOf(":"));
      if (this.writeCommitTimes.has(key)) fail(`write ${key} committed twice (at ${entry.seqno})`);
      this.writeCommitTimes.set(key, this.now());
    }
    this.reference.apply(payload);
    if (entry.isSignature) this.states.set(entry.seqno, this.reference.copy());
  }

  applied(node: SimNode): void {
    const raft = node.raft!;
    if (node.applied !== raft.commitSeqno)
      fail(`${node.id} applied ${node.applied}, committed ${raft.commitSeqno}`);
    const entry = raft.entry(node.applied);
    if (entry && !entry.isSignature)
      fail(`${node.id} committed at ${node.applied}, which is not a signature`);
    this.checkState(node, node.applied);
  }

  snapshotInstalled(node: SimNode, point: SnapshotPoint, state: ReadonlyMap<string, string>): void {
    this.stats.snapshotsInstalled++;
    const expected = this.states.get(point.seqno);
    if (!expected) fail(`${node.id} installed a snapshot at ${point.seqno}, not a committed signature`);
    if (!sameState(state, expected))
      fail(`${node.id} installed a snapshot at ${point.seqno} that differs from the log`);
    if (!this.digests[point.seqno]?.startsWith(`${point.view}.${point.seqno}:`)) {
      fail(
        `snapshot point ${point.view}.${point.seqno} is not the committed entry ${this.digests[point.seqno]}`,
      );
    }
  }

  afterDrain(node: SimNode): void {
    const raft = node.raft!;
    if (raft.stats.protocolViolations > 0)
      fail(`${node.id} saw a protocol violation: ${raft.stats.lastProblem}`);
    const last = node.logEntries.at(-1) ?? node.logStart;
    if (last.seqno !== raft.lastSeqno || last.view !== raft.lastView) {
      fail(
        `${node.id}'s ledger ends at ${last.view}.${last.seqno}, its Raft log at ${raft.lastView}.${raft.lastSeqno}`,
      );
    }
  }

  /** End of run: every live node's ledger matches Raft's log entry for entry. */
  checkLedger(node: SimNode): void {
    const raft = node.raft!;
    if (node.logStart.seqno !== raft.logStart.seqno)
      fail(`${node.id}'s ledger and Raft log start differently`);
    for (const entry of node.logEntries) {
      const own = raft.entry(entry.seqno);
      if (!own || entryDigest(own) !== entryDigest(entry))
        fail(`${node.id}'s ledger differs from Raft at ${entry.seqno}`);
    }
    if (node.logEntries.length !== raft.lastSeqno - raft.logStart.seqno)
      fail(`${node.id}'s ledger length differs`);
  }

  private checkState(node: SimNode, seqno: number): void {
    const expected = this.states.get(seqno);
    if (!expected) fail(`${node.id} applied up to ${seqno}, which is not a committed signature`);
    if (!sameState(node.kv.map, expected)) {
      fail(`${node.id}'s state at ${seqno} differs from the replay of the committed log`);
    }
  }
}
