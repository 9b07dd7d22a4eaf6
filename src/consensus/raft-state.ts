import { ConsensusError, invariant, isSeqno } from "./assert.ts";
import { type RaftConfig, type Settings, settingsOf } from "./config.ts";
import { RaftLog } from "./log.ts";
import type { Message, Outbound } from "./messages.ts";
import type { Primary, PrimaryHost } from "./primary.ts";
import type { Ready, RoleChange } from "./ready.ts";
import type { Entry, HardState, NodeId, Role } from "./types.ts";

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

/**
 * The first layer of `Raft` (raft.ts): one node's state, what the node has not been told yet and
 * the Ready that hands it over, membership, the commit point, the invariants and the plumbing
 * every other layer uses. Raft is one object split by job into layers, each a subclass of the one
 * before: this state, then elections (election.ts), the backup side of replication
 * (replication.ts), incoming messages (inbound.ts) and the public inputs (raft.ts). A layer uses
 * only itself and the layers beneath it.
 */
export class RaftState {
  readonly id: NodeId;
  protected readonly settings: Settings;
  private readonly random: () => number;
  protected readonly log: RaftLog;

  protected _role: Role = "backup";
  protected _view: number;
  protected votedFor: NodeId | null;
  protected _leader: NodeId | null = null;
  protected commit: number;
  /** Local durable prefix (the node reported it with `persisted`). */
  protected durable: number;
  /** As a backup: our log matches the current primary's up to here. */
  protected leaderMatch: number;
  /** As a backup: the durable, matching prefix we last acknowledged to the primary. */
  protected ackedDurable = 0;
  /** True once a committed configuration included this node; a later committed removal retires it. */
  private wasMember = false;

  protected electionElapsed = 0;
  protected electionTimeout = 0;
  protected votes = new Map<NodeId, boolean>();
  /** The primary's own state, while this node is primary. */
  protected primary: Primary | null = null;
  protected readonly host: PrimaryHost;

  // What the node has not been told yet.
  private outMessages: Outbound[] = [];
  protected outEntries: Entry[] = [];
  protected outTruncate: number | undefined;
  private outSnapshots: Array<{ to: NodeId; seqno: number }> = [];
  private outReadStates: Array<{ requestId: string; seqno: number }> = [];
  protected outReadsRejected: string[] = [];
  /** Last seqno handed to the node to persist (lowered by truncations). */
  protected lastHanded: number;
  private reported: { hard: HardState; commit: number; role: RoleChange };
  private outstanding: Ready | null = null;
  protected flushPending = false;

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
  // Membership

  /** Leaves a node retired once the configuration that removed it is committed. */
  protected checkRetired(): void {
    if (this._role === "backup" || this._role === "precandidate" || this._role === "candidate") {
      if (this.removalCommitted()) {
        this._role = "retired";
        this._leader = null;
      }
    }
  }

  /** True once a committed configuration that follows one we were in leaves us out. */
  protected removalCommitted(): boolean {
    if (!this.wasMember || this.log.latestConfig().includes(this.id)) return false;
    const committed = this.log.configAt(this.commit);
    return committed.length > 0 && !committed.includes(this.id);
  }

  /** Notes whether a configuration committed up to the commit point (from `since`) includes us. */
  protected noteMembership(since = this.commit): void {
    const committed = [
      this.log.configAt(since),
      ...this.log.configChangesIn(since, this.commit).map((c) => c.nodes),
    ];
    if (committed.some((nodes) => nodes.includes(this.id))) this.wasMember = true;
  }

  protected isVoter(): boolean {
    return this.log.latestConfig().includes(this.id) && this._role !== "retired";
  }

  protected votingConfigs(): NodeId[][] {
    return this.log.activeConfigs(this.commit).map((c) => c.nodes);
  }

  protected membersOfActiveConfigs(): Set<NodeId> {
    const members = new Set<NodeId>();
    for (const config of this.votingConfigs()) for (const id of config) members.add(id);
    return members;
  }

  // ---------------------------------------------------------------------------------------------
  // The commit point and the invariants

  protected setCommit(seqno: number): void {
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
  protected flush(): void {
    this.flushPending = false;
    this.primary?.flush();
    this.checkInvariants();
  }

  /** Cheap checks of what must hold between any two calls; a failure is a bug in this module. */
  protected checkInvariants(): void {
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

  protected appendEntries(entries: readonly Entry[]): void {
    this.log.append(entries);
    for (const entry of entries) {
      this.outEntries.push(entry);
    }
  }

  protected truncate(after: number): void {
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

  protected send(to: NodeId, message: Message): void {
    this.outMessages.push({ to, message });
  }

  protected header(to: NodeId): { from: NodeId; to: NodeId; view: number } {
    return { from: this.id, to, view: this._view };
  }

  private hardState(): HardState {
    return { view: this._view, votedFor: this.votedFor };
  }

  private roleChange(): RoleChange {
    return { role: this._role, view: this._view, leader: this._leader };
  }

  protected resetElectionTimeout(): void {
    const { electionTicksMin: min, electionTicksMax: max } = this.settings;
    const r = this.random();
    invariant(r >= 0 && r < 1, `random() returned ${r}, outside [0, 1)`);
    this.electionTimeout = min + Math.floor(r * (max - min));
  }

  protected invalid(reason: string): void {
    this.stats.invalidMessages++;
    this.stats.lastProblem = reason;
  }

  protected violation(reason: string): void {
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
