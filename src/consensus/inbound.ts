import type { Message } from "./messages.ts";
import { RaftReplication } from "./replication.ts";

/**
 * Raft's fourth layer (see raft-state.ts): which incoming messages to listen to, the view rules,
 * and the handler each message goes to.
 */
export class RaftInbound extends RaftReplication {
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
  protected fromKnownSender(m: Message): boolean {
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
  protected acceptView(m: Message): boolean {
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

  protected dispatch(m: Message): void {
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
}
