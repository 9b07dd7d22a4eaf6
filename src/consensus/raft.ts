import { ConsensusError } from "./assert.ts";
import { RaftInbound } from "./inbound.ts";
import type { PeerStatus } from "./primary.ts";
import type { Entry, NodeId, Role, SnapshotPoint } from "./types.ts";
import { configProblem, entriesProblem, parseMessage } from "./validate.ts";

export interface RaftStatus {
  id: NodeId;
  role: Role;
  view: number;
  leader: NodeId | null;
  commitSeqno: number;
  lastSeqno: number;
  durableSeqno: number;
  logStart: number;
  configs: Array<{ seqno: number; nodes: NodeId[] }>;
  peers: Record<NodeId, PeerStatus>;
  /** Messages dropped so far because their sender is not a member (RaftStats.nonMemberMessages). */
  nonMemberMessages: number;
}

/**
 * Coco's consensus: CCF's Raft variant as a pure, deterministic state machine. It does no I/O and
 * reads no clock or random source of its own: `tick()` is logical time, `step()` feeds it a
 * message, `propose()` hands it entries, and `ready()` returns what the node must persist, send
 * and apply. See docs/consensus.md for the protocol and the node's side of the contract.
 *
 * This file is its public face: the queries and the inputs. The rest is in layers beneath it
 * (raft-state.ts, election.ts, replication.ts, inbound.ts; the primary's own state is primary.ts).
 */
export class Raft extends RaftInbound {
  // ---------------------------------------------------------------------------------------------
  // Queries

  get role(): Role {
    return this._role;
  }
  get view(): number {
    return this._view;
  }
  get leader(): NodeId | null {
    return this._leader;
  }
  get commitSeqno(): number {
    return this.commit;
  }
  get lastSeqno(): number {
    return this.log.lastSeqno;
  }
  get lastView(): number {
    return this.log.lastView;
  }
  get durableSeqno(): number {
    return this.durable;
  }
  get logStart(): SnapshotPoint {
    return this.log.start;
  }
  /** True while proposals are accepted: primary, and not handing over after its own retirement. */
  get canPropose(): boolean {
    return this._role === "primary" && !this.removalCommitted();
  }

  entry(seqno: number): Entry | undefined {
    return this.log.entry(seqno);
  }
  /** Entries `from`..`to` inclusive that the log still holds. */
  entries(from: number, to: number): Entry[] {
    return this.log.slice(from, to);
  }
  viewAt(seqno: number): number | undefined {
    return this.log.viewAt(seqno);
  }
  /** The configuration in effect at `seqno` (for a snapshot taken there). */
  configAt(seqno: number): NodeId[] {
    return [...this.log.configAt(seqno)];
  }
  /**
   * The snapshot point for a snapshot the node takes at `seqno` (committed, still in the log).
   * Throws if this node does not know the configuration there: a node that joined from an empty
   * log without seeing a configuration entry before `seqno` (see docs/consensus.md, bootstrap).
   */
  snapshotPoint(seqno: number): SnapshotPoint {
    const view = this.log.viewAt(seqno);
    if (seqno > this.commit || view === undefined) {
      throw new ConsensusError(
        `no snapshot at ${seqno}: it must be committed (${this.commit}) and in the log`,
      );
    }
    const config = this.log.configAt(seqno);
    if (config.length === 0) throw new ConsensusError(`the configuration at ${seqno} is not known here`);
    return { seqno, view, config: [...config] };
  }

  /** True if a configuration change lies in (after, upTo] of the log. */
  configChangedIn(after: number, upTo: number): boolean {
    return this.log.configChangesIn(after, upTo).length > 0;
  }

  /** The configurations every decision needs a quorum of, oldest first. */
  activeConfigs(): NodeId[][] {
    return this.log.activeConfigs(this.commit).map((c) => [...c.nodes]);
  }

  status(): RaftStatus {
    const peers: Record<NodeId, PeerStatus> = this.primary?.peers() ?? {};
    return {
      id: this.id,
      role: this._role,
      view: this._view,
      leader: this._leader,
      commitSeqno: this.commit,
      lastSeqno: this.log.lastSeqno,
      durableSeqno: this.durable,
      logStart: this.log.start.seqno,
      configs: this.log.activeConfigs(this.commit).map((c) => ({ seqno: c.seqno, nodes: [...c.nodes] })),
      peers,
      nonMemberMessages: this.stats.nonMemberMessages,
    };
  }

  // ---------------------------------------------------------------------------------------------
  // Inputs

  /** Advances logical time by one tick. */
  tick(): void {
    if (this._role === "retired") return;
    this.electionElapsed++;
    if (this.primary) {
      // CheckQuorum: a primary that has not heard from a quorum for an election timeout steps down.
      if (this.electionElapsed >= this.settings.electionTicksMin) {
        this.electionElapsed = 0;
        if (!this.primary.quorumActive()) this.becomeBackup(this._view, null);
      }
      this.primary?.tick();
    } else if (this.electionElapsed >= this.electionTimeout) {
      this.electionElapsed = 0;
      if (this.isVoter()) this.campaign("pre");
      else this.resetElectionTimeout();
    }
    this.flush();
  }

  /**
   * Feeds one incoming message. Anything malformed or not addressed to this node is counted in
   * `stats.invalidMessages` and dropped; it never throws for bad input.
   */
  step(raw: unknown): void {
    const parsed = parseMessage(raw);
    if (!parsed.ok) {
      this.invalid(parsed.reason);
      return;
    }
    const m = parsed.message;
    if (m.to !== this.id || m.from === this.id) {
      this.invalid(`${m.type} from ${m.from} to ${m.to} arrived at ${this.id}`);
      return;
    }
    if (!this.fromKnownSender(m)) {
      this.stats.nonMemberMessages++;
      this.stats.lastProblem = `dropped ${m.type} (view ${m.view}) from ${m.from}, which is not a member`;
      return;
    }
    // A retired node still answers elections: a node that has not yet learned that the removal
    // committed still counts the old configuration, and may need this vote to make progress.
    if (this._role === "retired" && m.type !== "pre_vote" && m.type !== "request_vote") return;
    if (this.acceptView(m)) {
      this.dispatch(m);
    }
    this.flush();
  }

  /**
   * Appends entries built by this node as primary. They must continue the log: seqnos from
   * `lastSeqno + 1`, all in the current view. Returns false (and appends nothing) if this node
   * cannot take proposals now (not primary, or retiring); throws ConsensusError for bad entries.
   */
  propose(entries: readonly Entry[]): boolean {
    if (!this.canPropose) return false;
    const problem = entriesProblem(entries, this.log.lastSeqno + 1, this._view, this._view);
    if (problem) throw new ConsensusError(`propose: ${problem}`);
    for (const entry of entries) {
      if (entry.view !== this._view) {
        throw new ConsensusError(`propose: entry ${entry.seqno} has view ${entry.view}, not ${this._view}`);
      }
    }
    this.appendEntries(entries);
    if (entries.some((e) => e.config)) this.primary!.syncProgress();
    this.flushPending = true;
    this.checkInvariants();
    return true;
  }

  /**
   * Starts an election now instead of after a timeout (with PreVote, so it disturbs nobody).
   * For a node that starts a new service, or restarts as the only member, so it need not sit
   * out an election timeout first. Returns false if this node cannot campaign (not a voter, or
   * already primary).
   */
  campaignNow(): boolean {
    if (!this.isVoter() || this._role === "primary") return false;
    this.campaign("pre");
    this.flush();
    return true;
  }

  /**
   * Asks for a linearizable read point. Once this primary has confirmed with a quorum that it is
   * still primary, `readStates` carries `{requestId, seqno}`: answer the read after applying up to
   * `seqno`. A node that cannot serve it lists the id in `readsRejected`.
   */
  readIndex(requestId: string): void {
    if (!this.canPropose) {
      this.outReadsRejected.push(requestId);
      return;
    }
    // The heartbeat round goes out at the next ready(), so reads that arrive together share it.
    this.primary!.readIndex(requestId);
    this.flushPending = true;
  }

  /**
   * The node reports its storage durable up to the entry (seqno, view). A report about an entry
   * no longer in the log (it was truncated meanwhile) is ignored.
   */
  persisted(seqno: number, view: number): void {
    if (this._role === "retired") return;
    if (seqno <= this.durable || this.log.viewAt(seqno) !== view) return;
    this.durable = seqno;
    if (this.primary) this.primary.maybeCommit();
    else this.acknowledgeDurable();
    this.flush();
  }

  /**
   * The node durably installed a snapshot at `point` (a committed signature it received from the
   * primary). If our log holds the same entry at `point.seqno`, the entries after it are kept
   * ("kept_suffix": the node keeps its ledger after the snapshot point); otherwise the log is
   * reset to start at the point ("reset": the node drops all its entries). "ignored": the point is
   * not past our commit point (or we are primary); the node should not have installed it.
   * Replication continues from the end of the log.
   */
  restoreSnapshot(point: SnapshotPoint): "ignored" | "kept_suffix" | "reset" {
    if (!Number.isSafeInteger(point.seqno) || !Number.isSafeInteger(point.view) || point.view < 0) {
      throw new ConsensusError(`snapshot point ${point.view}.${point.seqno} is not a valid seqno and view`);
    }
    if (this._role === "retired" || this._role === "primary" || point.seqno <= this.commit) return "ignored";
    // The primary that sent it is at least at point.view; until we have heard from it, wait.
    if (point.view > this._view) return "ignored";
    const problem = configProblem(point.config);
    if (problem) throw new ConsensusError(`snapshot point: ${problem}`);
    let result: "kept_suffix" | "reset";
    if (this.log.viewAt(point.seqno) === point.view) {
      // Keep the suffix: it may hold entries we acknowledged as durable and that count
      // towards a commit the primary has made; dropping them could lose a committed entry.
      this.log.compact(point.seqno);
      this.outEntries = this.outEntries.filter((e) => e.seqno > point.seqno);
      this.lastHanded = Math.max(this.lastHanded, point.seqno);
      this.durable = Math.max(this.durable, point.seqno);
      result = "kept_suffix";
    } else {
      // Our entry there differs from the committed one, so nothing after it was ever counted
      // towards a commit: safe to drop it all.
      this.log.resetTo(point);
      this.outEntries = [];
      this.outTruncate = undefined;
      this.lastHanded = point.seqno;
      this.durable = point.seqno;
      result = "reset";
    }
    this.commit = point.seqno;
    this.leaderMatch = Math.max(this.leaderMatch, point.seqno);
    this.noteMembership();
    this.acknowledgeDurable();
    this.checkRetired();
    this.flush();
    return result;
  }

  /**
   * The node took a snapshot at `seqno` (at or before the commit point) and no longer needs the
   * entries up to it. Backups that need them will be sent the snapshot instead.
   */
  compact(seqno: number): void {
    if (seqno > this.commit)
      throw new ConsensusError(`cannot compact to ${seqno}, beyond commit ${this.commit}`);
    if (seqno > this.lastHanded) {
      throw new ConsensusError(
        `cannot compact to ${seqno}: entries after ${this.lastHanded} were never persisted`,
      );
    }
    this.log.compact(seqno);
  }

  /** The node could not send a snapshot to `to`: try again through the usual path. */
  snapshotFailed(to: NodeId): void {
    this.primary?.snapshotFailed(to);
    this.flush();
  }
}
