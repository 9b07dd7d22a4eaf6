import { invariant } from "./assert.ts";
import type { Message, PreVote, RequestVote } from "./messages.ts";
import { Primary } from "./primary.ts";
import { hasQuorum } from "./quorum.ts";
import { RaftState } from "./raft-state.ts";
import type { NodeId } from "./types.ts";

/** Raft's second layer (see raft-state.ts): views and roles, elections and votes. */
export class RaftElection extends RaftState {
  /** A message from the primary of our view: follow it. False if that contradicts what we know. */
  protected followLeader(from: NodeId): boolean {
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

  protected becomeBackup(view: number, leader: NodeId | null): void {
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
  protected campaign(kind: "pre" | "real" | "handover"): void {
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

  protected onPreVote(m: PreVote): void {
    const granted = this.wouldVote(m.from, m.view, true) && this.logAllowsVote(m.lastSeqno, m.lastView);
    const view = granted ? m.view : this._view;
    this.send(m.from, { from: this.id, to: m.from, view, type: "pre_vote_response", granted });
  }

  protected onRequestVote(m: RequestVote): void {
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

  protected onVote(from: NodeId, granted: boolean): void {
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
}
