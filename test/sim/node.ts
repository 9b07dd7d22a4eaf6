import {
  type Entry,
  type NodeId,
  Raft,
  type RaftConfig,
  type RoleChange,
  type SnapshotPoint,
} from "../../src/consensus/index.ts";
import type { StoreSnapshot } from "../../src/kv/index.ts";
import {
  type DecodedEntry,
  decodeEntry,
  decodeSnapshot,
  EntryType,
  type LedgerSecret,
  LedgerSecrets,
  Tables,
} from "../../src/ledger/index.ts";
import type { Environment } from "../../src/node/env.ts";
import { type LedgerSink, LedgerState, LedgerStateError } from "../../src/node/ledger-state.ts";
import { Replica, type ReplicaHooks, type ReplicaLedger } from "../../src/node/replica.ts";
import { APP_MAP, appState, type ClientOp, executeWrite, operationOf, type WriteRegistry } from "./app.ts";
import { type Recovered, SimDisk, SimLedger } from "./disk.ts";
import type { EventQueue } from "./events.ts";
import { ledgerId, signingKeys, simIds } from "./keys.ts";
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
  | { kind: "snapshot"; point: SnapshotPoint; bytes: Uint8Array }
  | { kind: "request"; request: ClientRequest }
  | { kind: "reply"; reply: ClientReply };

/** What a simulated node reports to the safety checker. */
export interface Observer {
  primary(node: SimNode, view: number): void;
  /** Each entry the node commits, in order (not those a snapshot covered). */
  committed(node: SimNode, entry: Entry): void;
  /** Consensus moved the commit point to `seqno`; the engine has not been told yet. */
  commitPoint(node: SimNode, seqno: number): void;
  /** The engine marked the commit point: its state there must be the replay of the log. */
  applied(node: SimNode): void;
  snapshotInstalled(node: SimNode, point: SnapshotPoint, snapshot: StoreSnapshot): void;
  snapshotTaken(node: SimNode, point: SnapshotPoint, bytes: Uint8Array): void;
  /** The node has handled an event (its replica ran): its engine and Raft agree again. */
  afterEvent(node: SimNode): void;
  /** The node cannot go on (it refused the primary's entry, or its state disagrees with Raft). */
  broken(node: SimNode, problem: string): never;
}

/**
 * Deliberate mistakes in driving the engine, for tests of the simulator only: each must be caught.
 */
export interface NodeBugs {
  /**
   * Reads are answered from the primary's latest store (which holds writes not yet committed)
   * as soon as the read index is confirmed, instead of from the committed state.
   */
  readUncommitted?: boolean;
  /** A truncation drops entries from the ledger and Raft's log, but the engine is not rolled back. */
  skipRollback?: boolean;
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
  /** The service's ledger secret (every node of the run knows it). */
  secret: LedgerSecret;
  serviceCertPem: string;
  writes: WriteRegistry;
  /** What the engine's clock reads at simulated time 0 (ms since the epoch). */
  clockBase: number;
  bugs: NodeBugs;
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

const encoder = new TextEncoder();

/**
 * One simulated Coco node: the production `Replica` (src/node/replica.ts) drives the real Raft
 * and the real transaction engine (`LedgerState`: KV store, Merkle tree, signatures, receipts)
 * on a simulated disk (`SimLedger`) and the simulated clock; around it, what `CocoNode` does
 * (a small request handler, signing, snapshots, restarts).
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
  private pendingWrites = new Map<number, PendingWrite>();
  private readsById = new Map<string, { client: string; key: string }>();
  private readsWaiting: PendingRead[] = [];
  private ticksSinceSignature = 0;
  private syncScheduled = false;
  /** A check the replica's hooks found broken; the run fails once the replica returns. */
  private problem: string | undefined;
  /** A snapshot was asked for while the newest signature was not committed: take it at the next. */
  private snapshotWanted = false;
  private pendingSnapshot: { seqno: number; bytes: Uint8Array } | undefined;
  /** The configuration the engine handed with the last entry it made (for the reconfiguration check). */
  private lastProposedConfig: string[] | undefined;
  private committedCache: { seqno: number; snapshot: StoreSnapshot } | undefined;
  private readonly engineEnv: Environment;
  private readonly sink: LedgerSink;

  constructor(
    readonly id: NodeId,
    private readonly env: NodeEnv,
  ) {
    this.engineEnv = {
      now: () => env.clockBase + env.queue.now,
      randomBytes: (n) => {
        const out = new Uint8Array(n);
        for (let i = 0; i < n; i++) out[i] = env.prng.int(256);
        return out;
      },
    };
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
    const state = this.restore(recovered);
    const start: SnapshotPoint = recovered.snapshot
      ? { ...recovered.snapshot.point, config: simIds(state.startConfig) }
      : { seqno: 0, view: 0, config: [] };
    const entries: Entry[] = [];
    for (const entry of recovered.entries) {
      if (entry.seqno <= start.seqno) continue;
      const ledgerConfig = state.configAfter(entry.seqno);
      const config = ledgerConfig && simIds(ledgerConfig);
      entries.push({
        seqno: entry.seqno,
        view: entry.view,
        isSignature: decodeEntry(entry.data).type === EntryType.Signature,
        data: entry.data,
        ...(config ? { config } : {}),
      });
    }
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

  /**
   * The engine from the durable ledger and snapshot. A ledger that does not reach the snapshot (a
   * crash lost entries the snapshot covers) restarts after it, as Coco's ledger does when it
   * installs a snapshot; otherwise the whole ledger is replayed, receipts and all.
   */
  private restore(recovered: Recovered): LedgerState {
    const snapshot = recovered.snapshot;
    let { ledgerStart, entries } = recovered;
    if (snapshot && (entries.at(-1)?.seqno ?? ledgerStart - 1) < snapshot.point.seqno) {
      this.disk.writeSnapshot(snapshot, true);
      ledgerStart = snapshot.point.seqno + 1;
      entries = [];
    }
    const secrets = new LedgerSecrets([this.env.secret]);
    return LedgerState.restore({
      env: this.engineEnv,
      keys: signingKeys(this.id),
      secrets,
      sink: this.sink,
      entries: entries.map((e) => decodeEntry(e.data)),
      ...(snapshot ? { snapshot: decodeSnapshot(snapshot.bytes, secrets) } : {}),
      ledgerStart,
      serviceCertPem: this.env.serviceCertPem,
      commitSeqno: recovered.commitSeqno,
    });
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
        this.serveReads();
      },
      readReady: (requestId, seqno) => this.readReady(requestId, seqno),
      applied: (entry) => this.appliedFromPrimary(entry),
      rolledBack: (seqno) => this.rolledBack(seqno),
      sendSnapshot: (to, seqno) => this.sendSnapshot(to, seqno),
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
    this.pendingWrites.clear();
    this.readsById.clear();
    this.readsWaiting = [];
    this.syncScheduled = false;
    this.snapshotWanted = false;
    this.pendingSnapshot = undefined;
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
          this.installSnapshot(from, packet.point, packet.bytes);
          replica.process();
          break;
        case "request":
          // A write's entry reaches consensus now; the replica carries it out after this event.
          this.onRequest(packet.request);
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

  private onRequest(request: ClientRequest): void {
    const raft = this.raft!;
    const state = this.state!;
    if (!this.canWrite) {
      const leader = raft.leader === this.id ? null : raft.leader;
      this.reply(request.client, { requestId: request.requestId, status: "not_primary", leader });
      return;
    }
    const { op } = request;
    if (op.kind === "get") {
      this.readsById.set(request.requestId, { client: request.client, key: op.key });
      raft.readIndex(request.requestId);
      this.replica!.process();
      return;
    }
    const tx = state.store.begin();
    executeWrite(tx, op);
    const outcome = state.commitTx(tx, this.env.writes.claimsFor(operationOf(request.requestId)));
    if (!outcome.ok || outcome.seqno === null) throw new Error(`${this.id}: a client write did not commit`);
    this.trace(
      `write ${operationOf(request.requestId)} ${op.kind} ${op.key} at ${outcome.view}.${outcome.seqno}`,
    );
    this.pendingWrites.set(outcome.seqno, {
      view: outcome.view,
      requestId: request.requestId,
      client: request.client,
    });
    if (state.txSinceSignature >= this.env.signEvery) this.sign();
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
    const info = tx.map(Tables.nodesInfo);
    for (const id of nodes.filter((n) => !current.includes(n))) {
      const record = { status: "Trusted", cert: signingKeys(id).nodeCertPem, rpc_address: id };
      info.set(encoder.encode(ledgerId(id)), encoder.encode(JSON.stringify(record)));
      tx.map(Tables.nodesEndorsedCertificates).set(encoder.encode(ledgerId(id)), encoder.encode(record.cert));
    }
    for (const id of current.filter((n) => !nodes.includes(n))) {
      const record = { status: "Retired", cert: signingKeys(id).nodeCertPem, rpc_address: id };
      info.set(encoder.encode(ledgerId(id)), encoder.encode(JSON.stringify(record)));
    }
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
    this.afterSignature(seqno);
  }

  /** A signature entry joined this node's ledger: a snapshot that was asked for is taken there. */
  private afterSignature(seqno: number): void {
    if (!this.snapshotWanted || this.pendingSnapshot) return;
    this.snapshotWanted = false;
    this.pendingSnapshot = { seqno, bytes: this.state!.encodeSnapshotAt(seqno) };
    this.trace(`snapshot encoded at ${seqno}, written once committed`);
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
    if (entry.type === EntryType.Signature) this.afterSignature(entry.seqno);
  }

  /** Consensus dropped the entries after `after` (the replica rolled the engine back). */
  private rolledBack(after: number): void {
    this.trace(`truncate after ${after}`);
    if (this.pendingSnapshot && this.pendingSnapshot.seqno > after) {
      this.pendingSnapshot = undefined;
      this.snapshotWanted = true;
    }
  }

  private readReady(requestId: string, seqno: number | null): void {
    const read = this.readsById.get(requestId);
    this.readsById.delete(requestId);
    if (!read) return;
    if (seqno === null) {
      this.reply(read.client, { requestId, status: "not_primary", leader: null });
      return;
    }
    this.readsWaiting.push({ requestId, seqno, ...read });
    this.serveReads();
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
    for (const [seqno, pending] of this.pendingWrites) {
      if (seqno > commit) continue;
      this.pendingWrites.delete(seqno);
      // The engine says whether this transaction, in the view it was made, is what committed.
      if (state.txStatus(pending.view, seqno) === "Committed")
        this.reply(pending.client, { requestId: pending.requestId, status: "ok" });
    }
    this.env.observer.applied(this);
    const pending = this.pendingSnapshot;
    if (pending && pending.seqno <= commit) {
      this.pendingSnapshot = undefined;
      this.writeLocalSnapshot(pending.seqno, pending.bytes);
    }
  }

  private serveReads(): void {
    if (this.readsWaiting.length === 0) return;
    const waiting = this.readsWaiting;
    this.readsWaiting = [];
    for (const read of waiting) {
      if (this.env.bugs.readUncommitted) {
        const stored = this.state!.store.read(APP_MAP, encoder.encode(read.key));
        const value = stored ? new TextDecoder().decode(stored) : "";
        this.reply(read.client, { requestId: read.requestId, status: "ok", value });
      } else if (read.seqno <= this.state!.commitSeqno) {
        // Reads see the committed state: the primary's store also holds writes not yet committed.
        const value = appState(this.committedSnapshot()).get(read.key) ?? "";
        this.reply(read.client, { requestId: read.requestId, status: "ok", value });
      } else {
        this.readsWaiting.push(read);
      }
    }
  }

  /**
   * Takes a snapshot at the commit point and compacts the log up to it. The engine encodes a
   * snapshot only at its newest signature; if that is not committed yet, the snapshot is taken at
   * the next signature and written once that commits, as Coco's nodes do.
   */
  takeSnapshot(): boolean {
    const raft = this.raft;
    const state = this.state;
    if (!raft || !state || state.commitSeqno <= raft.logStart.seqno) return false;
    const commit = state.commitSeqno;
    if (state.lastSignatureSeqno === commit) {
      try {
        this.writeLocalSnapshot(commit, state.encodeSnapshotAt(commit));
        return true;
      } catch (error) {
        // A rollback past a newer signature makes the engine forget the frame of the one before,
        // so it cannot encode there until the next signature (see docs/consensus.md).
        if (!(error instanceof LedgerStateError)) throw error;
        this.trace(`snapshot at ${commit}: ${error.message}`);
      }
    }
    this.snapshotWanted = true;
    this.trace(`snapshot wanted at the next signature (commit ${commit})`);
    return true;
  }

  private writeLocalSnapshot(seqno: number, bytes: Uint8Array): void {
    const raft = this.raft!;
    if (seqno <= raft.logStart.seqno) return;
    const point = raft.snapshotPoint(seqno);
    this.env.observer.snapshotTaken(this, point, bytes);
    this.disk.writeSnapshot({ point, bytes }, false);
    raft.compact(seqno);
    this.trace(`snapshot at ${seqno}`);
  }

  private sendSnapshot(to: NodeId, seqno: number): void {
    const snapshot = this.disk.snapshot;
    if (!snapshot || snapshot.point.seqno !== seqno)
      throw new Error(`${this.id} was asked to send a snapshot at ${seqno} it does not have`);
    this.trace(`send snapshot ${seqno} to ${to}`);
    this.env.net.send(this.id, to, { kind: "snapshot", point: snapshot.point, bytes: snapshot.bytes });
  }

  /**
   * A snapshot from the primary. If the engine holds that very entry, consensus only moves its
   * log start and commit point there. Otherwise the engine checks the snapshot (its anchor must be
   * signed by a node and by the service) before anything changes, and then it replaces the
   * engine's state, Raft's log and the ledger together.
   */
  private installSnapshot(from: string, point: SnapshotPoint, bytes: Uint8Array): void {
    const raft = this.raft!;
    const state = this.state!;
    if (point.seqno <= raft.commitSeqno) {
      this.trace(`snapshot ${point.seqno} from ${from}: already committed`);
      return;
    }
    const secrets = state.secrets;
    let decoded: ReturnType<typeof decodeSnapshot>;
    try {
      decoded = decodeSnapshot(bytes, secrets);
    } catch (error) {
      this.env.observer.broken(this, `snapshot ${point.seqno} from ${from}: ${(error as Error).message}`);
    }
    if (decoded.snapshot.version !== point.seqno || decoded.view !== point.view) {
      this.env.observer.broken(
        this,
        `snapshot from ${from} holds ${decoded.view}.${decoded.snapshot.version}, sent as ${point.view}.${point.seqno}`,
      );
    }
    if (state.lastSeqno >= point.seqno && state.viewOf(point.seqno) === point.view) {
      const result = raft.restoreSnapshot(point);
      this.trace(`snapshot ${point.seqno} from ${from}: ${result}`);
      if (result === "ignored") return;
      if (result !== "kept_suffix") this.env.observer.broken(this, `Raft ${result} a log the engine matches`);
      this.disk.writeSnapshot({ point, bytes }, false);
      this.env.observer.snapshotInstalled(this, point, decoded.snapshot);
      this.markCommitted(point.seqno);
      this.serveReads();
      return;
    }
    let prepared: ReturnType<LedgerState["prepareSnapshot"]>;
    try {
      prepared = state.prepareSnapshot(decoded, this.env.serviceCertPem);
    } catch (error) {
      this.env.observer.broken(this, `snapshot ${point.seqno} from ${from}: ${(error as Error).message}`);
    }
    if (simIds(prepared.config).join(",") !== [...point.config].sort().join(",")) {
      this.env.observer.broken(
        this,
        `snapshot ${point.seqno} trusts [${simIds(prepared.config)}], consensus has [${point.config}] there`,
      );
    }
    const result = raft.restoreSnapshot(point);
    this.trace(`snapshot ${point.seqno} from ${from}: ${result}`);
    if (result === "ignored") return;
    if (result !== "reset") this.env.observer.broken(this, `Raft kept a log suffix the engine does not hold`);
    state.installSnapshot(prepared);
    this.committedCache = undefined;
    this.storage!.restartAfter({ point, bytes });
    this.applied = point.seqno;
    this.pendingSnapshot = undefined;
    for (const seqno of this.pendingWrites.keys()) if (seqno <= point.seqno) this.pendingWrites.delete(seqno);
    this.env.observer.snapshotInstalled(this, point, decoded.snapshot);
    this.env.observer.applied(this);
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
        // The replica hears of the durable seqno and tells consensus (`persisted`).
        this.storage!.sync();
        this.settled();
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

/**
 * The engine as the replica sees it. The replica names the primary it follows by consensus id
 * (a simulator name here); the engine's signing rules name nodes as the ledger does, by key hash.
 * With `skipRollback` (a planted bug) truncations do not roll it back.
 */
function replicaLedger(state: LedgerState, skipRollback: boolean): ReplicaLedger {
  return {
    get view() {
      return state.view;
    },
    get lastSeqno() {
      return state.lastSeqno;
    },
    viewOf: (seqno) => state.viewOf(seqno),
    applyReplicated: (entry, source) =>
      state.applyReplicated(
        entry,
        source && { view: source.view, primary: source.primary === null ? null : ledgerId(source.primary) },
      ),
    rollback: (seqno) => (skipRollback ? undefined : state.rollback(seqno)),
    markCommitted: (commit) => state.markCommitted(commit),
  };
}
