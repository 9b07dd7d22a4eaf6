import { ConsensusError, invariant, isSeqno } from "./assert.ts";
import { type RaftConfig, type Settings, settingsOf } from "./config.ts";
import { RaftLog } from "./log.ts";
import type {
  AppendEntries,
  AppendEntriesResponse,
  Heartbeat,
  HeartbeatResponse,
  Message,
  Outbound,
  PreVote,
  RequestVote,
} from "./messages.ts";
import { type PeerStatus, Primary, type PrimaryHost } from "./primary.ts";
import { hasQuorum } from "./quorum.ts";
import type { Ready, RoleChange } from "./ready.ts";
import type { Entry, HardState, NodeId, Role, SnapshotPoint } from "./types.ts";
import { configProblem, entriesProblem, parseMessage } from "./validate.ts";

export interface RaftStats {
  /** Messages dropped because they were malformed (unknown type, bad field, not for us). */
  invalidMessages: number;
  /**
   * Well-formed messages that contradict the protocol's guarantees (two primaries in one view,
   * a primary missing a committed entry). Always 0 in a correct network; the simulator checks it.
   */
  protocolViolations: number;
  /**
   * Well-formed messages dropped because their sender is not a node this one works with: not
   * in an active configuration, not a backup this primary still replicates to, and not the
   * primary this node follows (see `fromKnownSender`).
   */
  nonMemberMessages: number;
  lastProblem: string | undefined;
}

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
 */
export class Raft {
  readonly id: NodeId;
  private readonly settings: Settings;
  private readonly random: () => number;
  private readonly log: RaftLog;

  private _role: Role = "backup";
  private _view: number;
  private votedFor: NodeId | null;
  private _leader: NodeId | null = null;
  private commit: number;
  /** Local durable prefix (the node reported it with `persisted`). */
  private durable: number;
  /** As a backup: our log matches the current primary's up to here. */
  private leaderMatch: number;
  /** As a backup: the durable, matching prefix we last acknowledged to the primary. */
  private ackedDurable = 0;
  /** True once a committed configuration included this node; a later committed removal retires it. */
  private wasMember = false;

  private electionElapsed = 0;
  private electionTimeout = 0;
  private votes = new Map<NodeId, boolean>();
  /** The primary's own state, while this node is primary. */
  private primary: Primary | null = null;
  private readonly host: PrimaryHost;

  // What the node has not been told yet.
  private outMessages: Outbound[] = [];
  private outEntries: Entry[] = [];
  private outTruncate: number | undefined;
  private outSnapshots: Array<{ to: NodeId; seqno: number }> = [];
  private outReadStates: Array<{ requestId: string; seqno: number }> = [];
  private outReadsRejected: string[] = [];
  /** Last seqno handed to the node to persist (lowered by truncations). */
  private lastHanded: number;
  private reported: { hard: HardState; commit: number; role: RoleChange };
  private outstanding: Ready | null = null;
  private flushPending = false;

  readonly stats: RaftStats = {
    invalidMessages: 0,
    protocolViolations: 0,
    nonMemberMessages: 0,
    lastProblem: undefined,
  };

  constructor(config: RaftConfig) {
    this.settings = settingsOf(config);
    this.id = config.id;
    this.random = config.random;
    this.log = new RaftLog(config.log ?? { start: { seqno: 0, view: 0, config: [] }, entries: [] });
    const hard = config.hardState ?? { view: this.log.lastView, votedFor: null };
    if (!Number.isSafeInteger(hard.view) || hard.view < this.log.lastView) {
      throw new ConsensusError(
        `hard state view ${hard.view} is behind the log's last view ${this.log.lastView}`,
      );
    }
    this._view = hard.view;
    this.votedFor = hard.votedFor;
    // The commit point the node remembers (from its ledger) saves re-learning it, and keeps
    // configurations that were committed from counting as pending again after a restart.
    if (config.commitSeqno !== undefined && !isSeqno(config.commitSeqno)) {
      throw new ConsensusError(`commitSeqno must be an integer >= 0, got ${config.commitSeqno}`);
    }
    const known = Math.min(config.commitSeqno ?? 0, this.log.lastSeqno);
    this.commit = this.log.lastSignatureIn(this.log.start.seqno, known) ?? this.log.start.seqno;
    this.durable = this.log.lastSeqno;
    this.leaderMatch = this.commit;
    this.lastHanded = this.log.lastSeqno;
    this.noteMembership();
    this.resetElectionTimeout();
    this.reported = { hard: this.hardState(), commit: this.commit, role: this.roleChange() };
    this.host = {
      id: this.id,
      log: this.log,
      settings: this.settings,
      view: () => this._view,
      commit: () => this.commit,
      durable: () => this.durable,
      votingConfigs: () => this.votingConfigs(),
      members: () => this.membersOfActiveConfigs(),
      removalCommitted: () => this.removalCommitted(),
      send: (to, message) => this.send(to, message),
      setCommit: (seqno) => this.setCommit(seqno),
      sendSnapshot: (to, seqno) => this.outSnapshots.push({ to, seqno }),
      readConfirmed: (requestId, seqno) => this.outReadStates.push({ requestId, seqno }),
      readRejected: (requestId) => this.outReadsRejected.push(requestId),
      violation: (reason) => this.violation(reason),
    };
  }

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

  // ---------------------------------------------------------------------------------------------
  // Ready

  hasReady(): boolean {
    return (
      this.flushPending ||
      this.outMessages.length > 0 ||
      this.outEntries.length > 0 ||
      this.outTruncate !== undefined ||
      this.outSnapshots.length > 0 ||
      this.outReadStates.length > 0 ||
      this.outReadsRejected.length > 0 ||
      this.commit !== this.reported.commit ||
      !sameHardState(this.hardState(), this.reported.hard) ||
      !sameRole(this.roleChange(), this.reported.role)
    );
  }

  /** Collects what the node must do; hand it back with `advance` once done. */
  ready(): Ready {
    invariant(this.outstanding === null, "ready() called again before advance()");
    this.flush();
    const ready: Ready = {
      entriesToPersist: this.outEntries,
      messages: this.outMessages,
      snapshotsToSend: this.outSnapshots,
      readStates: this.outReadStates,
      readsRejected: this.outReadsRejected,
    };
    const hard = this.hardState();
    if (!sameHardState(hard, this.reported.hard)) ready.hardState = hard;
    if (this.outTruncate !== undefined) ready.truncateAfter = this.outTruncate;
    if (this.commit !== this.reported.commit) ready.commitSeqno = this.commit;
    const role = this.roleChange();
    if (!sameRole(role, this.reported.role)) ready.roleChange = role;
    const last = this.outEntries.at(-1);
    if (last) this.lastHanded = last.seqno;
    this.reported = { hard, commit: this.commit, role };
    this.outEntries = [];
    this.outMessages = [];
    this.outSnapshots = [];
    this.outReadStates = [];
    this.outReadsRejected = [];
    this.outTruncate = undefined;
    this.outstanding = ready;
    return ready;
  }

  advance(ready: Ready): void {
    invariant(this.outstanding === ready, "advance() with a Ready that is not the outstanding one");
    this.outstanding = null;
  }

  // ---------------------------------------------------------------------------------------------
  // Views and roles

  /**
   * Whether to listen to a message at all. A node listens to the members of its active
   * configurations, to the backups it still replicates to as primary (a retiring node), and to
   * the primary it follows (a retiring primary handing over). Anyone else is not a member: its
   * messages are dropped whatever view they claim, so no outsider can depose a primary, win a
   * vote or lead a backup away. One exception keeps joining and lagging nodes live: a node that
   * is not a voter yet (a new node learning the log), or a backup that has not heard from its
   * primary for an election timeout (one that missed the configuration adding today's primary),
   * follows AppendEntries and heartbeats from any sender, as it must learn the configurations
   * from the log itself. The node-to-node channels have already authenticated the sender as a trusted node.
   */
  private fromKnownSender(m: Message): boolean {
    if (m.from === this._leader) return true;
    if (this.membersOfActiveConfigs().has(m.from)) return true;
    if (this.primary?.tracks(m.from)) return true;
    // A node that knows no configuration at all (a joiner that has received nothing yet) has no
    // members to tell strangers from, and nothing a stranger could disturb: it answers anyone
    // the node-to-node channels let through (only nodes the service trusts). A primary whose
    // new configuration counts this joiner may need its vote before it has replicated anything.
    if (this.membersOfActiveConfigs().size === 0) return true;
    if (m.type !== "append_entries" && m.type !== "heartbeat") return false;
    if (this._role === "primary" || this._role === "retired") return false;
    // A node outside its own configuration (still joining) cannot vote or lead: following
    // whoever replicates to it harms nobody, and it may not know today's primary yet.
    return !this.isVoter() || this._leader === null || this.electionElapsed >= this.settings.electionTicksMin;
  }

  /**
   * Applies the view rules to an incoming message. Returns true if the message should then be
   * handled at the (possibly new) current view.
   */
  private acceptView(m: Message): boolean {
    if (m.view > this._view) {
      if (m.type === "pre_vote" || m.type === "request_vote") {
        // A node that heard from a live primary recently ignores elections (unless a primary
        // handing over asked for this one), so a partitioned node cannot disrupt the service.
        const handover = m.type === "request_vote" && m.handover;
        if (!handover && this._leader !== null && this.electionElapsed < this.settings.electionTicksMin) {
          return false;
        }
      }
      if (m.type === "pre_vote") return true;
      if (m.type === "pre_vote_response" && m.granted) return true;
      const leader = m.type === "append_entries" || m.type === "heartbeat" ? m.from : null;
      this.becomeBackup(m.view, leader);
      return true;
    }
    if (m.view < this._view) {
      // Tell a stale primary or pre-candidate about the newer view so it stands down.
      if (m.type === "append_entries") this.send(m.from, this.rejectAppend(m, 0, 0));
      else if (m.type === "heartbeat") this.send(m.from, this.staleHeartbeatResponse(m.from));
      else if (m.type === "pre_vote")
        this.send(m.from, { ...this.header(m.from), type: "pre_vote_response", granted: false });
      else if (m.type === "request_vote_response" && this.settings.unsafe.countStaleVotes) return true;
      return false;
    }
    return true;
  }

  private dispatch(m: Message): void {
    switch (m.type) {
      case "pre_vote":
        this.onPreVote(m);
        return;
      case "request_vote":
        this.onRequestVote(m);
        return;
      case "pre_vote_response":
        if (this._role === "precandidate" && m.view === this._view + 1) this.onVote(m.from, m.granted);
        else if (this._role === "candidate" && this.settings.unsafe.countStaleVotes)
          this.onVote(m.from, m.granted);
        return;
      case "request_vote_response":
        if (this._role === "candidate") this.onVote(m.from, m.granted);
        return;
      case "append_entries":
        if (this.followLeader(m.from)) this.onAppendEntries(m);
        return;
      case "heartbeat":
        if (this.followLeader(m.from)) this.onHeartbeat(m);
        return;
      case "append_entries_response":
        this.primary?.onAppendResponse(m);
        return;
      case "heartbeat_response":
        this.primary?.onHeartbeatResponse(m);
        return;
      case "timeout_now":
        if (this._role === "backup" && this.isVoter()) this.campaign("handover");
        return;
    }
  }

  /** A message from the primary of our view: follow it. False if that contradicts what we know. */
  private followLeader(from: NodeId): boolean {
    if (this._role === "primary") {
      this.violation(`${from} acts as primary in view ${this._view}, which this node leads`);
      return false;
    }
    if (this._role !== "backup" || this._leader !== from) {
      if (this._leader !== null && this._leader !== from) {
        this.violation(`${from} acts as primary in view ${this._view}, led by ${this._leader}`);
        return false;
      }
      this.becomeBackup(this._view, from);
    }
    this.electionElapsed = 0;
    return true;
  }

  private becomeBackup(view: number, leader: NodeId | null): void {
    invariant(view >= this._view, `view would go back from ${this._view} to ${view}`);
    // What we know matches one primary says nothing about the next one, except the commit point.
    if (view !== this._view || leader !== this._leader) this.leaderMatch = this.commit;
    if (view > this._view) {
      this._view = view;
      this.votedFor = null;
    }
    const retired = this.removalCommitted();
    this._leader = retired ? null : leader;
    this._role = retired ? "retired" : "backup";
    this.votes.clear();
    this.electionElapsed = 0;
    this.resetElectionTimeout();
    this.primary?.stepDown();
    this.primary = null;
  }

  /**
   * Starts an election. Normally a pre-vote first (it changes no one's view, so a node that
   * cannot win does not disrupt anyone); a real election once the pre-vote is won, or at once
   * when a retiring primary hands over.
   */
  private campaign(kind: "pre" | "real" | "handover"): void {
    this._leader = null;
    this.votes.clear();
    this.votes.set(this.id, true);
    this.electionElapsed = 0;
    this.resetElectionTimeout();
    let request: (to: NodeId) => Message;
    if (kind !== "pre") {
      this._role = "candidate";
      this._view++;
      this.votedFor = this.id;
      const handover = kind === "handover";
      request = (to) => ({ ...this.lastLog(to), type: "request_vote", handover });
    } else {
      this._role = "precandidate";
      request = (to) => ({ ...this.lastLog(to), view: this._view + 1, type: "pre_vote" });
    }
    for (const id of this.membersOfActiveConfigs()) {
      if (id !== this.id) this.send(id, request(id));
    }
    this.tally();
  }

  private lastLog(to: NodeId): {
    from: NodeId;
    to: NodeId;
    view: number;
    lastSeqno: number;
    lastView: number;
  } {
    return { ...this.header(to), lastSeqno: this.log.lastSeqno, lastView: this.log.lastView };
  }

  private onPreVote(m: PreVote): void {
    const granted = this.wouldVote(m.from, m.view, true) && this.logAllowsVote(m.lastSeqno, m.lastView);
    const view = granted ? m.view : this._view;
    this.send(m.from, { from: this.id, to: m.from, view, type: "pre_vote_response", granted });
  }

  private onRequestVote(m: RequestVote): void {
    const granted = this.wouldVote(m.from, m.view, false) && this.logAllowsVote(m.lastSeqno, m.lastView);
    if (granted) {
      this.votedFor = m.from;
      this.electionElapsed = 0;
    }
    this.send(m.from, { ...this.header(m.from), type: "request_vote_response", granted });
  }

  private wouldVote(candidate: NodeId, view: number, pre: boolean): boolean {
    if (this.votedFor === candidate) return true;
    if (this.settings.unsafe.voteTwice && this._role === "backup") return true;
    if (pre && view > this._view) return true;
    return this.votedFor === null && this._leader === null && this._role !== "primary";
  }

  private logAllowsVote(lastSeqno: number, lastView: number): boolean {
    const { unsafe } = this.settings;
    if (unsafe.longerLogWins) return lastSeqno >= this.log.lastSeqno || lastView > this.log.lastView;
    return unsafe.ignoreLogOnVote === true || this.log.isUpToDate(lastSeqno, lastView);
  }

  private onVote(from: NodeId, granted: boolean): void {
    if (!this.votes.has(from)) this.votes.set(from, granted);
    this.tally();
  }

  private tally(): void {
    const configs = this.votingConfigs();
    if (hasQuorum(configs, (id) => this.votes.get(id) === true)) {
      if (this._role === "precandidate") this.campaign("real");
      else this.becomePrimary();
      return;
    }
    const lost = configs.some((c) => c.filter((id) => this.votes.get(id) === false).length * 2 >= c.length);
    if (lost) this.becomeBackup(this._view, null);
  }

  private becomePrimary(): void {
    invariant(this._role === "candidate", `only a candidate becomes primary, not a ${this._role}`);
    invariant(this.votedFor === this.id, "a primary voted for itself");
    this._role = "primary";
    this._leader = this.id;
    this.votes.clear();
    this.electionElapsed = 0;
    this.primary = new Primary(this.host);
  }

  /** Leaves a node retired once the configuration that removed it is committed. */
  private checkRetired(): void {
    if (this._role === "backup" || this._role === "precandidate" || this._role === "candidate") {
      if (this.removalCommitted()) {
        this._role = "retired";
        this._leader = null;
      }
    }
  }

  /** True once a committed configuration that follows one we were in leaves us out. */
  private removalCommitted(): boolean {
    if (!this.wasMember || this.log.latestConfig().includes(this.id)) return false;
    const committed = this.log.configAt(this.commit);
    return committed.length > 0 && !committed.includes(this.id);
  }

  /** Notes whether a configuration committed up to the commit point (from `since`) includes us. */
  private noteMembership(since = this.commit): void {
    const committed = [
      this.log.configAt(since),
      ...this.log.configChangesIn(since, this.commit).map((c) => c.nodes),
    ];
    if (committed.some((nodes) => nodes.includes(this.id))) this.wasMember = true;
  }

  private isVoter(): boolean {
    return this.log.latestConfig().includes(this.id) && this._role !== "retired";
  }

  private votingConfigs(): NodeId[][] {
    return this.log.activeConfigs(this.commit).map((c) => c.nodes);
  }

  private membersOfActiveConfigs(): Set<NodeId> {
    const members = new Set<NodeId>();
    for (const config of this.votingConfigs()) for (const id of config) members.add(id);
    return members;
  }

  // ---------------------------------------------------------------------------------------------
  // Backup side of replication

  private onAppendEntries(m: AppendEntries): void {
    let prevSeqno = m.prevSeqno;
    let prevView = m.prevView;
    let entries = m.entries;
    const start = this.log.start;
    if (prevSeqno < start.seqno) {
      // Our log starts at a snapshot point, which is committed and so in every primary's log.
      entries = entries.slice(Math.min(entries.length, start.seqno - prevSeqno));
      prevSeqno = start.seqno;
      prevView = start.view;
    }
    if (prevSeqno > this.log.lastSeqno) {
      this.send(m.from, this.rejectAppend(m, 0, 0));
      return;
    }
    const have = this.log.viewAt(prevSeqno)!;
    if (have !== prevView) {
      if (prevSeqno <= this.commit) {
        this.violation(`primary ${m.from} disagrees with committed entry ${prevSeqno}`);
        return;
      }
      this.send(m.from, this.rejectAppend(m, have, this.log.firstSeqnoOfView(have) ?? start.seqno + 1));
      return;
    }
    for (let i = 0; i < entries.length; i++) {
      const entry = entries[i]!;
      const existing = this.log.viewAt(entry.seqno);
      if (existing === entry.view) continue;
      if (existing !== undefined) {
        if (entry.seqno <= this.commit) {
          this.violation(`primary ${m.from} would overwrite committed entry ${entry.seqno}`);
          return;
        }
        if (entry.seqno <= this.leaderMatch) {
          this.violation(`primary ${m.from} contradicts entry ${entry.seqno} it sent before`);
          return;
        }
        this.truncate(entry.seqno - 1);
      }
      this.appendEntries(entries.slice(i));
      break;
    }
    const matched = prevSeqno + entries.length;
    this.leaderMatch = Math.max(this.leaderMatch, matched);
    this.followCommit(m.commitSeqno);
    this.send(m.from, {
      ...this.header(m.from),
      type: "append_entries_response",
      success: true,
      matchSeqno: matched,
      durableSeqno: this.durableAck(),
      lastSeqno: this.log.lastSeqno,
      commitSeqno: this.commit,
      rejectedPrev: 0,
      conflictView: 0,
      conflictFirst: 0,
    });
  }

  private rejectAppend(m: AppendEntries, conflictView: number, conflictFirst: number): AppendEntriesResponse {
    return {
      ...this.header(m.from),
      type: "append_entries_response",
      success: false,
      matchSeqno: 0,
      durableSeqno: 0,
      lastSeqno: this.log.lastSeqno,
      commitSeqno: this.commit,
      rejectedPrev: m.prevSeqno,
      conflictView,
      conflictFirst,
    };
  }

  private onHeartbeat(m: Heartbeat): void {
    this.followCommit(m.commitSeqno);
    this.send(m.from, this.heartbeatResponse(m.from, m.round));
  }

  private heartbeatResponse(to: NodeId, round: number): HeartbeatResponse {
    return {
      ...this.header(to),
      type: "heartbeat_response",
      round,
      matchSeqno: this.leaderMatch,
      durableSeqno: this.durableAck(),
      lastSeqno: this.log.lastSeqno,
      commitSeqno: this.commit,
    };
  }

  /** The answer to a heartbeat from an old view: only our view matters to its sender. */
  private staleHeartbeatResponse(to: NodeId): HeartbeatResponse {
    return {
      ...this.header(to),
      type: "heartbeat_response",
      round: 0,
      matchSeqno: 0,
      durableSeqno: 0,
      lastSeqno: this.log.lastSeqno,
      commitSeqno: this.commit,
    };
  }

  /** Durable and known to match the primary: what the primary may count towards commit. */
  private durableAck(): number {
    const ack = Math.min(this.durable, this.leaderMatch);
    this.ackedDurable = Math.max(this.ackedDurable, ack);
    return ack;
  }

  /** More of our log became durable: tell the primary, so it can commit without waiting. */
  private acknowledgeDurable(): void {
    if (this._role !== "backup" || this._leader === null) return;
    if (Math.min(this.durable, this.leaderMatch) <= this.ackedDurable) return;
    this.send(this._leader, {
      ...this.header(this._leader),
      type: "append_entries_response",
      success: true,
      matchSeqno: this.leaderMatch,
      durableSeqno: this.durableAck(),
      lastSeqno: this.log.lastSeqno,
      commitSeqno: this.commit,
      rejectedPrev: 0,
      conflictView: 0,
      conflictFirst: 0,
    });
  }

  /** Moves our commit point to the last signature the primary has committed that we hold. */
  private followCommit(primaryCommit: number): void {
    const target = Math.min(primaryCommit, this.leaderMatch);
    const seqno = this.log.lastSignatureIn(this.commit, target);
    if (seqno !== undefined) this.setCommit(seqno);
  }

  private setCommit(seqno: number): void {
    invariant(seqno > this.commit, `commit would go back from ${this.commit} to ${seqno}`);
    invariant(seqno <= this.log.lastSeqno, `commit ${seqno} is beyond the log's end ${this.log.lastSeqno}`);
    const unsafe = this.settings.unsafe;
    invariant(
      this.log.entry(seqno)?.isSignature === true || unsafe.commitNonSignature === true,
      () => `commit ${seqno} is not a signature entry`,
    );
    const previous = this.commit;
    this.commit = seqno;
    this.noteMembership(previous);
    if (this.primary) this.primary.committed(seqno);
    else this.checkRetired();
  }

  /** Lets the primary send what its backups can take now. */
  private flush(): void {
    this.flushPending = false;
    this.primary?.flush();
    this.checkInvariants();
  }

  /** Cheap checks of what must hold between any two calls; a failure is a bug in this module. */
  private checkInvariants(): void {
    const { log } = this;
    invariant(this.commit >= log.start.seqno && this.commit <= log.lastSeqno, () => {
      return `commit ${this.commit} outside the log ${log.start.seqno}..${log.lastSeqno}`;
    });
    invariant(this.durable <= log.lastSeqno, `durable ${this.durable} beyond the log end ${log.lastSeqno}`);
    invariant(log.lastView <= this._view, `log view ${log.lastView} ahead of view ${this._view}`);
    invariant(
      (this._role === "primary") === (this.primary !== null),
      "primary state without the primary role",
    );
    invariant(this._role !== "primary" || this._leader === this.id, "a primary that does not lead itself");
    invariant(
      this._role !== "candidate" || this.votedFor === this.id,
      "a candidate that did not vote for itself",
    );
  }

  // ---------------------------------------------------------------------------------------------
  // Plumbing

  private appendEntries(entries: readonly Entry[]): void {
    this.log.append(entries);
    for (const entry of entries) {
      this.outEntries.push(entry);
    }
  }

  private truncate(after: number): void {
    invariant(
      after >= this.commit,
      `truncation after ${after} would remove committed entries up to ${this.commit}`,
    );
    this.log.truncateAfter(after);
    this.durable = Math.min(this.durable, after);
    while (this.outEntries.length > 0 && this.outEntries.at(-1)!.seqno > after) this.outEntries.pop();
    if (this.lastHanded > after) {
      this.outTruncate = Math.min(this.outTruncate ?? after, after);
      this.lastHanded = after;
    }
  }

  private send(to: NodeId, message: Message): void {
    this.outMessages.push({ to, message });
  }

  private header(to: NodeId): { from: NodeId; to: NodeId; view: number } {
    return { from: this.id, to, view: this._view };
  }

  private hardState(): HardState {
    return { view: this._view, votedFor: this.votedFor };
  }

  private roleChange(): RoleChange {
    return { role: this._role, view: this._view, leader: this._leader };
  }

  private resetElectionTimeout(): void {
    const { electionTicksMin: min, electionTicksMax: max } = this.settings;
    const r = this.random();
    invariant(r >= 0 && r < 1, `random() returned ${r}, outside [0, 1)`);
    this.electionTimeout = min + Math.floor(r * (max - min));
  }

  private invalid(reason: string): void {
    this.stats.invalidMessages++;
    this.stats.lastProblem = reason;
  }

  private violation(reason: string): void {
    this.stats.protocolViolations++;
    this.stats.lastProblem = reason;
  }
}

function sameHardState(a: HardState, b: HardState): boolean {
  return a.view === b.view && a.votedFor === b.votedFor;
}

function sameRole(a: RoleChange, b: RoleChange): boolean {
  return a.role === b.role && a.view === b.view && a.leader === b.leader;
}
