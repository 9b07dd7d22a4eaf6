import { type NodeId, Raft, type RoleChange } from "../../src/consensus/index.ts";
import type { StoreSnapshot } from "../../src/kv/index.ts";
import { type DecodedEntry, EntryType, type LedgerSink, type LedgerState } from "../../src/ledger/index.ts";
import type { Environment } from "../../src/node/env.ts";
import { Replica, type ReplicaHooks } from "../../src/node/replica.ts";
import { retireNode, trustNode } from "./configuration.ts";
import { SimDisk, SimLedger } from "./disk.ts";
import { simIds } from "./keys.ts";
import type { NodeEnv } from "./node-env.ts";
import { ClientRequests } from "./node-requests.ts";
import { engineEnvironment, raftLog, replicaLedger, restoreEngine } from "./node-restore.ts";
import { NodeSnapshots } from "./node-snapshots.ts";
import type { Packet } from "./packets.ts";

/** Transactions before the commit point whose receipts a simulated node keeps in memory. */
const SIM_RECEIPT_WINDOW = 8;

/**
 * One simulated Coco node: the production `Replica` (src/node/replica.ts) drives the real Raft
 * and the real transaction engine (`LedgerState`: KV store, Merkle tree, signatures, receipts)
 * on a simulated disk (`SimLedger`) and the simulated clock; around it, what `CocoNode` does
 * (a small request handler, signing, snapshots, restarts). This file is the node's lifecycle and
 * wiring; its client requests are node-requests.ts, its snapshots node-snapshots.ts, starting
 * from disk node-restore.ts, and what it is given and reports to node-env.ts.
 */
export class SimNode {
  raft: Raft | null = null;
  state: LedgerState | null = null;
  replica: Replica | null = null;
  private storage: SimLedger | null = null;
  readonly disk = new SimDisk();
  /** The commit point the checker has seen this node reach. */
  applied = 0;
  retired = false;
  pausedUntil = 0;
  /** Bumped on each crash, so that events scheduled before it do nothing after. */
  generation = 0;
  private ticksSinceSignature = 0;
  private syncScheduled = false;
  /** A check the replica's hooks found broken; the run fails once the replica returns. */
  private problem: string | undefined;
  /** The configuration the engine handed with the last entry it made (for the reconfiguration check). */
  private lastProposedConfig: string[] | undefined;
  private committedCache: { seqno: number; snapshot: StoreSnapshot } | undefined;
  private readonly requests: ClientRequests;
  private readonly snapshots: NodeSnapshots;
  private readonly engineEnv: Environment;
  private readonly sink: LedgerSink;

  constructor(
    readonly id: NodeId,
    private readonly env: NodeEnv,
  ) {
    this.engineEnv = engineEnvironment(env.queue, env.prng, env.clockBase);
    // The primary's entries go to consensus through the replica, as on a real node.
    this.sink = {
      append: (seqno, frame, isSignature, config) => {
        if (!this.replica) return false;
        // The ledger names nodes by key hash; consensus here by simulator name.
        const ids = config ? simIds(config) : undefined;
        this.lastProposedConfig = ids;
        return this.replica.append(seqno, frame, isSignature, ids);
      },
    };
    this.requests = new ClientRequests({
      id,
      net: env.net,
      writes: env.writes,
      signEvery: env.signEvery,
      readUncommitted: env.bugs.readUncommitted === true,
      raft: () => this.raft!,
      state: () => this.state!,
      canWrite: () => this.canWrite,
      sign: () => this.sign(),
      process: () => this.replica!.process(),
      committedSnapshot: () => this.committedSnapshot(),
      trace: (line) => this.trace(line),
    });
    this.snapshots = new NodeSnapshots({
      id,
      disk: this.disk,
      net: env.net,
      serviceCertPem: env.serviceCertPem,
      raft: () => this.raft,
      state: () => this.state,
      storage: () => this.storage!,
      trace: (line) => this.trace(line),
      broken: (problem) => env.observer.broken(this, problem),
      taken: (point, bytes) => env.observer.snapshotTaken(this, point, bytes),
      installed: (point, snapshot) => env.observer.snapshotInstalled(this, point, snapshot),
      applied: () => env.observer.applied(this),
      markCommitted: (seqno) => this.markCommitted(seqno),
      serveReads: () => this.requests.serveReads(),
      replaced: (seqno) => {
        this.committedCache = undefined;
        this.applied = seqno;
        this.requests.replacedUpTo(seqno);
      },
    });
  }

  get alive(): boolean {
    return this.raft !== null;
  }

  /** The engine's whole store at its commit point (cached until the commit point moves). */
  committedSnapshot(): StoreSnapshot {
    const state = this.state!;
    if (this.committedCache?.seqno !== state.commitSeqno) {
      this.committedCache = { seqno: state.commitSeqno, snapshot: state.store.snapshot(state.commitSeqno) };
    }
    return this.committedCache.snapshot;
  }

  /** Starts (or restarts) the node from what its disk holds, through `LedgerState.restore`. */
  start(): void {
    const recovered = this.disk.recover();
    const state = restoreEngine(this.disk, recovered, {
      id: this.id,
      env: this.engineEnv,
      secret: this.env.secret,
      sink: this.sink,
      serviceCertPem: this.env.serviceCertPem,
    });
    // A small window: most receipts the checker asks for are rebuilt from the ledger, and the
    // engine runs with its old proofs dropped, as a real node does past 10,000 transactions.
    state.receiptWindow = SIM_RECEIPT_WINDOW;
    const { start, entries } = raftLog(recovered, state);
    this.state = state;
    this.committedCache = undefined;
    const raft = new Raft({
      ...this.env.raft,
      id: this.id,
      random: () => this.env.prng.float(),
      log: { start, entries },
      hardState: recovered.hardState,
      commitSeqno: recovered.commitSeqno,
    });
    this.raft = raft;
    this.storage = new SimLedger(
      this.disk,
      (seqno) => raft.entry(seqno),
      () => this.scheduleSync(),
    );
    this.replica = new Replica(
      raft,
      replicaLedger(state, this.env.bugs.skipRollback === true),
      this.storage,
      this.replicaHooks(),
      {
        warn: (_, message) => this.trace(`warn: ${message}`),
        error: (_, message) => this.trace(`error: ${message}`),
      },
      { afterIo: (run) => this.afterIo(run) },
    );
    this.ticksSinceSignature = 0;
    this.trace(
      `start: log ${start.seqno}+${entries.length}, view ${this.raft.view}, commit ${this.raft.commitSeqno}`,
    );
    if (
      recovered.snapshot &&
      [...recovered.snapshot.point.config].sort().join(",") !== simIds(state.startConfig).join(",")
    ) {
      this.env.observer.broken(
        this,
        `snapshot at ${start.seqno} was taken with configuration [${recovered.snapshot.point.config}], ` +
          `the engine restored [${simIds(state.startConfig)}]`,
      );
    }
    this.applied = start.seqno;
    if (this.raft.commitSeqno > this.applied) this.commitTo(this.raft.commitSeqno);
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

  /** What the replica calls back into: the parts of `CocoNode` the simulator plays. */
  private replicaHooks(): ReplicaHooks {
    return {
      send: (to, message) => this.env.net.send(this.id, to, { kind: "raft", message }),
      saveHardState: (hard) => this.disk.writeHardState(hard),
      roleChanged: (change) => this.onRoleChange(change),
      committed: (seqno) => {
        this.disk.recordCommit(seqno);
        this.scheduleSync();
        this.commitTo(seqno);
        this.requests.serveReads();
      },
      readReady: (requestId, seqno) => this.requests.readReady(requestId, seqno),
      applied: (entry) => this.appliedFromPrimary(entry),
      rolledBack: (seqno) => this.rolledBack(seqno),
      sendSnapshot: (to, seqno) => this.snapshots.send(to, seqno),
    };
  }

  /**
   * The replica's deferred processing (a node's `setImmediate`): after the events already due at
   * this simulated instant; not at all if the node crashed meanwhile, later if it is paused.
   */
  private afterIo(run: () => void): void {
    const generation = this.generation;
    this.env.queue.after(0, () => {
      if (this.generation !== generation) return;
      this.whenRunning(() => {
        run();
        this.settled();
      });
    });
  }

  /** After the replica ran: a refusal or a broken check fails the run; then the per-event checks. */
  private settled(): void {
    const problem = this.problem ?? this.replica?.refusal;
    if (problem) this.env.observer.broken(this, problem);
    this.env.observer.afterEvent(this);
  }

  crash(): void {
    if (!this.raft) return;
    this.trace("crash");
    this.raft = null;
    this.replica = null;
    this.storage = null;
    this.state = null;
    this.committedCache = undefined;
    this.generation++;
    this.disk.crash(this.env.prng);
    this.requests.clear();
    this.syncScheduled = false;
    this.snapshots.clear();
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
      const replica = this.replica!;
      switch (packet.kind) {
        case "raft":
          replica.step(from, packet.message);
          break;
        case "snapshot":
          this.snapshots.install(from, packet.point, packet.bytes);
          replica.process();
          break;
        case "request":
          // A write's entry reaches consensus now; the replica carries it out after this event.
          this.requests.onRequest(packet.request);
          break;
        case "reply":
          return;
      }
      this.settled();
    });
  }

  /** Primary, in the view its engine writes entries in. */
  private get canWrite(): boolean {
    return this.raft!.canPropose && this.state!.view === this.raft!.view;
  }

  private tick(): void {
    this.replica!.tick();
    this.ticksSinceSignature++;
    if (this.canWrite && this.state!.txSinceSignature > 0 && this.ticksSinceSignature >= this.env.signTicks)
      this.sign();
    this.settled();
  }

  /**
   * Proposes a reconfiguration (followed by a signature), as governance would: a `nodes.info`
   * write that trusts the new nodes and retires the removed ones.
   */
  reconfigure(nodes: NodeId[]): boolean {
    const raft = this.raft;
    if (!raft || !this.canWrite) return false;
    const state = this.state!;
    const current = raft.activeConfigs().at(-1) ?? [];
    const tx = state.store.begin();
    for (const id of nodes.filter((n) => !current.includes(n))) trustNode(tx, id);
    for (const id of current.filter((n) => !nodes.includes(n))) retireNode(tx, id);
    this.lastProposedConfig = undefined;
    const outcome = state.commitTx(tx);
    if (!outcome.ok || outcome.seqno === null)
      throw new Error(`${this.id}: a reconfiguration did not commit`);
    // The sink saw the entry: the configuration the engine derived from nodes.info.
    const proposed = this.lastProposedConfig as string[] | undefined;
    const expected = [...nodes].sort().join(",");
    if (proposed?.join(",") !== expected) {
      this.env.observer.broken(
        this,
        `reconfiguration to [${expected}] gave consensus [${proposed ?? "no configuration"}]`,
      );
    }
    this.sign();
    this.settled();
    return true;
  }

  private sign(): void {
    const seqno = this.state!.emitSignature();
    this.trace(`sign ${seqno}`);
    this.ticksSinceSignature = 0;
    this.snapshots.afterSignature(seqno);
  }

  /**
   * A backup applied the primary's entry (the replica did, through the engine, which re-checks
   * commit evidence and signatures against its own Merkle tree; a refusal fails the run). The
   * configuration consensus carries with it must be the one its `nodes.info` write implies.
   */
  private appliedFromPrimary(entry: DecodedEntry): void {
    const ledgerConfig = this.state!.configAfter(entry.seqno);
    const config = ledgerConfig && simIds(ledgerConfig);
    const carried = this.raft!.entry(entry.seqno)?.config;
    if ((config ?? []).join(",") !== [...(carried ?? [])].sort().join(",")) {
      this.problem ??= `entry ${entry.view}.${entry.seqno} carries configuration [${carried ?? ""}], its nodes.info write says [${config ?? ""}]`;
    }
    if (entry.type === EntryType.Signature) this.snapshots.afterSignature(entry.seqno);
  }

  /** Consensus dropped the entries after `after` (the replica rolled the engine back). */
  private rolledBack(after: number): void {
    this.trace(`truncate after ${after}`);
    this.snapshots.rolledBack(after);
  }

  private onRoleChange(change: RoleChange): void {
    this.trace(`role ${change.role} view ${change.view} leader ${change.leader ?? "-"}`);
    if (change.role === "primary") {
      this.env.observer.primary(this, change.view);
      // A new primary signs at once: nothing of its view can commit before a signature.
      this.state!.enterView(change.view);
      if (this.state!.lastSeqno > 0) this.sign();
    }
    if (change.role === "retired") this.retired = true;
  }

  /** The commit point moved: report the newly committed entries, then tell the engine. */
  private commitTo(commit: number): void {
    if (commit <= this.applied) return;
    const raft = this.raft!;
    for (let seqno = this.applied + 1; seqno <= commit; seqno++) {
      const entry = raft.entry(seqno);
      if (!entry) this.env.observer.broken(this, `committed entry ${seqno} is not in its log`);
      this.env.observer.committed(this, entry);
    }
    this.env.observer.commitPoint(this, commit);
    this.markCommitted(commit);
  }

  private markCommitted(commit: number): void {
    const state = this.state!;
    state.markCommitted(commit);
    this.applied = commit;
    this.trace(`commit ${commit}`);
    this.requests.committed(commit);
    this.env.observer.applied(this);
    this.snapshots.committed(commit);
  }

  /** Takes a snapshot at the commit point, or at the next signature (see `NodeSnapshots.take`). */
  takeSnapshot(): boolean {
    return this.snapshots.take();
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
        // The replica hears of the durable seqno and tells consensus (`persisted`).
        this.storage!.sync();
        this.settled();
      });
    });
  }

  private trace(line: string): void {
    this.env.trace?.(`${this.id} ${line}`);
  }
}
