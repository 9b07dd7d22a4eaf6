import {
  type Entry,
  type NodeId,
  Raft,
  type RaftConfig,
  type RoleChange,
  type SnapshotPoint,
} from "../../src/consensus/index.ts";
import { SimDisk } from "./disk.ts";
import type { EventQueue } from "./events.ts";
import { type ClientOp, decodePayload, encodePayload, Kv, type Payload } from "./kv.ts";
import type { SimNetwork } from "./network.ts";
import type { Prng } from "./prng.ts";

export interface ClientRequest {
  client: string;
  requestId: string;
  op: ClientOp;
}

export type ClientReply =
  | { requestId: string; status: "ok"; value?: string }
  | { requestId: string; status: "not_primary"; leader: NodeId | null };

export type Packet =
  | { kind: "raft"; message: unknown }
  | { kind: "snapshot"; point: SnapshotPoint; state: Array<[string, string]> }
  | { kind: "request"; request: ClientRequest }
  | { kind: "reply"; reply: ClientReply };

/** What a simulated node reports to the safety checker. */
export interface Observer {
  primary(node: SimNode, view: number): void;
  committed(node: SimNode, entry: Entry): void;
  applied(node: SimNode): void;
  snapshotInstalled(node: SimNode, point: SnapshotPoint, state: ReadonlyMap<string, string>): void;
  /** The node has carried out every Ready: its ledger and Raft agree again. */
  afterDrain(node: SimNode): void;
}

export interface NodeEnv {
  queue: EventQueue;
  prng: Prng;
  net: SimNetwork<Packet>;
  observer: Observer;
  trace: ((line: string) => void) | null;
  raft: Partial<RaftConfig>;
  tickMs: number;
  /** A primary signs after this many entries, or after `signTicks` ticks with unsigned entries. */
  signEvery: number;
  signTicks: number;
  diskLatencyMs: [number, number];
}

interface PendingWrite {
  view: number;
  requestId: string;
  client: string;
}

interface PendingRead {
  requestId: string;
  client: string;
  key: string;
  seqno: number;
}

/**
 * One simulated Coco node: a Raft, a disk, a KV state machine applied at commit, and a small
 * request handler. It plays the node's side of the Ready contract, as src/node will.
 */
export class SimNode {
  raft: Raft | null = null;
  readonly disk: SimDisk;
  kv = new Kv();
  applied = 0;
  /** The ledger as written (synced or not): where committed entries are read from. */
  logStart: SnapshotPoint;
  logEntries: Entry[] = [];
  retired = false;
  pausedUntil = 0;
  /** Bumped on each crash, so that events scheduled before it do nothing after. */
  generation = 0;
  private pendingWrites = new Map<number, PendingWrite>();
  private readsById = new Map<string, { client: string; key: string }>();
  private readsWaiting: PendingRead[] = [];
  private unsigned = 0;
  private ticksSinceSignature = 0;
  private syncScheduled = false;

  constructor(
    readonly id: NodeId,
    base: SnapshotPoint,
    private readonly env: NodeEnv,
  ) {
    this.disk = new SimDisk(base);
    this.logStart = base;
  }

  get alive(): boolean {
    return this.raft !== null;
  }

  /** Starts (or restarts) the node from what its disk holds. */
  start(): void {
    const recovered = this.disk.recover();
    this.raft = new Raft({
      ...this.env.raft,
      id: this.id,
      random: () => this.env.prng.float(),
      log: recovered.log,
      hardState: recovered.hardState,
      commitSeqno: recovered.commitSeqno,
    });
    this.kv = new Kv(recovered.snapshot?.state);
    this.applied = recovered.log.start.seqno;
    this.logStart = recovered.log.start;
    this.logEntries = [...recovered.log.entries];
    this.unsigned = 0;
    this.ticksSinceSignature = 0;
    this.trace(
      `start: log ${this.logStart.seqno}+${this.logEntries.length}, view ${this.raft.view}, commit ${this.raft.commitSeqno}`,
    );
    if (this.raft.commitSeqno > this.applied) this.applyUpTo(this.raft.commitSeqno);
    else if (this.applied > 0) this.env.observer.applied(this);
    const generation = this.generation;
    const tick = (): void => {
      if (this.generation !== generation) return;
      // A paused process misses its timer ticks; it does not replay them all when it resumes.
      if (this.env.queue.now >= this.pausedUntil) this.tick();
      this.env.queue.after(this.env.tickMs, tick);
    };
    this.env.queue.after(this.env.prng.between(1, this.env.tickMs), tick);
  }

  crash(): void {
    if (!this.raft) return;
    this.trace("crash");
    this.raft = null;
    this.generation++;
    this.disk.crash(this.env.prng);
    this.kv = new Kv();
    this.pendingWrites.clear();
    this.readsById.clear();
    this.readsWaiting = [];
    this.syncScheduled = false;
  }

  /** Runs `fn` now, or when a pause ends; not at all if the node crashed meanwhile. */
  whenRunning(fn: () => void): void {
    const generation = this.generation;
    const run = (): void => {
      if (this.generation !== generation || !this.raft) return;
      if (this.env.queue.now < this.pausedUntil) this.env.queue.at(this.pausedUntil, run);
      else fn();
    };
    run();
  }

  receive(from: string, packet: Packet): void {
    this.whenRunning(() => {
      const raft = this.raft!;
      switch (packet.kind) {
        case "raft":
          raft.step(packet.message);
          break;
        case "snapshot":
          this.installSnapshot(from, packet.point, new Map(packet.state));
          break;
        case "request":
          this.onRequest(packet.request);
          break;
        case "reply":
          break;
      }
      this.drain();
    });
  }

  private tick(): void {
    const raft = this.raft!;
    raft.tick();
    this.ticksSinceSignature++;
    if (raft.canPropose && this.unsigned > 0 && this.ticksSinceSignature >= this.env.signTicks) this.sign();
    this.drain();
  }

  private onRequest(request: ClientRequest): void {
    const raft = this.raft!;
    if (!raft.canPropose) {
      const leader = raft.leader === this.id ? null : raft.leader;
      this.reply(request.client, { requestId: request.requestId, status: "not_primary", leader });
      return;
    }
    const { op } = request;
    if (op.kind === "get") {
      this.readsById.set(request.requestId, { client: request.client, key: op.key });
      raft.readIndex(request.requestId);
      return;
    }
    const seqno = raft.lastSeqno + 1;
    const payload: Payload = { type: "write", requestId: request.requestId, op };
    this.propose({ seqno, view: raft.view, isSignature: false, data: encodePayload(payload) });
    this.pendingWrites.set(seqno, { view: raft.view, requestId: request.requestId, client: request.client });
    this.unsigned++;
    if (this.unsigned >= this.env.signEvery) this.sign();
  }

  /** Proposes a reconfiguration (followed by a signature), as governance would. */
  reconfigure(nodes: NodeId[]): boolean {
    const raft = this.raft;
    if (!raft?.canPropose) return false;
    const seqno = raft.lastSeqno + 1;
    this.propose({
      seqno,
      view: raft.view,
      isSignature: false,
      config: nodes,
      data: encodePayload({ type: "config", nodes }),
    });
    this.sign();
    this.drain();
    return true;
  }

  private sign(): void {
    const raft = this.raft!;
    const seqno = raft.lastSeqno + 1;
    this.propose({
      seqno,
      view: raft.view,
      isSignature: true,
      data: encodePayload({ type: "signature", view: raft.view, seqno }),
    });
    this.unsigned = 0;
    this.ticksSinceSignature = 0;
  }

  private propose(entry: Entry): void {
    if (!this.raft!.propose([entry])) throw new Error(`${this.id} could not propose although it can`);
  }

  /** Carries out Readies until Raft has nothing more to say. */
  drain(): void {
    const raft = this.raft;
    if (!raft) return;
    while (raft.hasReady()) {
      const ready = raft.ready();
      if (ready.hardState) this.disk.writeHardState(ready.hardState);
      if (ready.truncateAfter !== undefined) {
        this.trace(`truncate after ${ready.truncateAfter}`);
        this.disk.truncate(ready.truncateAfter);
        this.logEntries = this.logEntries.filter((e) => e.seqno <= ready.truncateAfter!);
      }
      if (ready.entriesToPersist.length > 0) {
        this.disk.append(ready.entriesToPersist);
        this.logEntries.push(...ready.entriesToPersist);
        this.scheduleSync();
      }
      for (const { to, message } of ready.messages) {
        this.env.net.send(this.id, to, { kind: "raft", message });
      }
      for (const { to } of ready.snapshotsToSend) this.sendSnapshot(to);
      if (ready.roleChange) this.onRoleChange(ready.roleChange);
      if (ready.commitSeqno !== undefined) {
        this.disk.recordCommit(ready.commitSeqno);
        this.scheduleSync();
        this.applyUpTo(ready.commitSeqno);
      }
      for (const { requestId, seqno } of ready.readStates) {
        const read = this.readsById.get(requestId);
        this.readsById.delete(requestId);
        if (read) this.readsWaiting.push({ requestId, seqno, ...read });
      }
      for (const requestId of ready.readsRejected) {
        const read = this.readsById.get(requestId);
        this.readsById.delete(requestId);
        if (read) this.reply(read.client, { requestId, status: "not_primary", leader: null });
      }
      raft.advance(ready);
      this.serveReads();
    }
    this.env.observer.afterDrain(this);
  }

  private onRoleChange(change: RoleChange): void {
    this.trace(`role ${change.role} view ${change.view} leader ${change.leader ?? "-"}`);
    if (change.role === "primary") {
      this.env.observer.primary(this, change.view);
      // A new primary signs at once: nothing of its view can commit before a signature.
      this.unsigned = 0;
      this.sign();
    }
    if (change.role === "retired") this.retired = true;
  }

  private applyUpTo(commit: number): void {
    for (let seqno = this.applied + 1; seqno <= commit; seqno++) {
      const entry = this.logEntries[seqno - this.logStart.seqno - 1];
      if (!entry || entry.seqno !== seqno)
        throw new Error(`${this.id}: committed entry ${seqno} is not in its ledger`);
      this.env.observer.committed(this, entry);
      this.kv.apply(decodePayload(entry.data));
      const pending = this.pendingWrites.get(seqno);
      if (pending) {
        this.pendingWrites.delete(seqno);
        if (pending.view === entry.view)
          this.reply(pending.client, { requestId: pending.requestId, status: "ok" });
      }
    }
    if (commit > this.applied) {
      this.applied = commit;
      this.trace(`commit ${commit}`);
      this.env.observer.applied(this);
    }
  }

  private serveReads(): void {
    if (this.readsWaiting.length === 0) return;
    const waiting = this.readsWaiting;
    this.readsWaiting = [];
    for (const read of waiting) {
      if (read.seqno <= this.applied) {
        this.reply(read.client, { requestId: read.requestId, status: "ok", value: this.kv.get(read.key) });
      } else {
        this.readsWaiting.push(read);
      }
    }
  }

  /** Takes a snapshot at the commit point and compacts the log up to it. */
  takeSnapshot(): boolean {
    const raft = this.raft;
    if (!raft || this.applied <= this.logStart.seqno) return false;
    const seqno = this.applied;
    const point = raft.snapshotPoint(seqno);
    this.disk.writeSnapshot({ point, state: this.kv.copy() }, false);
    raft.compact(seqno);
    this.logEntries = this.logEntries.filter((e) => e.seqno > seqno);
    this.logStart = point;
    this.trace(`snapshot at ${seqno}`);
    return true;
  }

  private sendSnapshot(to: NodeId): void {
    const snapshot = this.disk.snapshot;
    if (!snapshot) throw new Error(`${this.id} was asked to send a snapshot it does not have`);
    this.trace(`send snapshot ${snapshot.point.seqno} to ${to}`);
    this.env.net.send(this.id, to, { kind: "snapshot", point: snapshot.point, state: [...snapshot.state] });
  }

  private installSnapshot(from: string, point: SnapshotPoint, state: Map<string, string>): void {
    const raft = this.raft!;
    const result = raft.restoreSnapshot(point);
    this.trace(`snapshot ${point.seqno} from ${from}: ${result}`);
    if (result === "ignored") return;
    this.disk.writeSnapshot({ point, state }, result === "reset");
    this.logEntries = result === "reset" ? [] : this.logEntries.filter((e) => e.seqno > point.seqno);
    this.logStart = point;
    this.kv = new Kv(state);
    this.applied = point.seqno;
    for (const seqno of this.pendingWrites.keys()) if (seqno <= point.seqno) this.pendingWrites.delete(seqno);
    this.env.observer.snapshotInstalled(this, point, state);
    this.serveReads();
  }

  private scheduleSync(): void {
    if (this.syncScheduled) return;
    this.syncScheduled = true;
    const [lo, hi] = this.env.diskLatencyMs;
    const generation = this.generation;
    this.env.queue.after(this.env.prng.between(lo, hi), () => {
      if (this.generation !== generation) return;
      this.whenRunning(() => {
        this.syncScheduled = false;
        this.disk.sync();
        const last = this.logEntries.at(-1) ?? this.logStart;
        this.raft!.persisted(last.seqno, last.view);
        this.drain();
      });
    });
  }

  private reply(client: string, reply: ClientReply): void {
    this.env.net.send(this.id, client, { kind: "reply", reply }, false);
  }

  private trace(line: string): void {
    this.env.trace?.(`${this.id} ${line}`);
  }
}
