import type { Logger } from "pino";
import type { RoleChange } from "../consensus/index.ts";
import { type GovernanceWrite, governanceWrite } from "../gov/index.ts";
import { createJsEngine, type JsEngine } from "../js/index.ts";
import type { Tx } from "../kv/index.ts";
import {
  type CommitOutcome,
  type LedgerFiles,
  type LedgerState,
  type NodeInfo,
  type ServiceInfo,
  ZERO_DIGEST,
} from "../ledger/index.ts";
import { NodeChannels, type PeerStats, type RequestOptions } from "../net/index.ts";
import type { ProviderSeams } from "../tee/index.ts";
import {
  type AdmissionHost,
  admit,
  hasJoined,
  INSTANT_TRUST_WARNING,
  nodeRecordsAt,
  readEndorsedCertificate,
  SettledPoints,
} from "./admission.ts";
import { type Booted, bootNode, type EntrySink } from "./boot.ts";
import { NodeCertificates, type ServedCertificates } from "./certificates.ts";
import { CommitFollower } from "./commit-follower.ts";
import { type CommitTrace, createCommitTrace } from "./commit-trace.ts";
import type { NodeConfig } from "./config.ts";
import { createReplica, runReplica } from "./consensus-start.ts";
import type { Environment } from "./env.ts";
import { type GovHostDeps, nodeGovHost, rekey } from "./gov-host.ts";
import { type NodeIdentity, serviceCurveOf } from "./identity.ts";
import { type JoinRequest, type JoinResponse, JoinVerifier } from "./join.ts";
import { NodeError } from "./node-error.ts";
import { Peers } from "./peers.ts";
import { ReadIndex } from "./read-index.ts";
import { RecoveryShares } from "./recovery-shares.ts";
import type { Replica } from "./replica.ts";
import type { IdentityStore } from "./sealed-identity.ts";
import { ServiceLifecycle } from "./service-lifecycle.ts";
import { defaultMaxInFlight, SignatureScheduler } from "./signing.ts";
import { INSTALL_SNAPSHOT, parseInstallSnapshot } from "./snapshot-message.ts";
import { SnapshotTransfer } from "./snapshot-transfer.ts";
import { Snapshots } from "./snapshots.ts";
import type { StateFiles } from "./state-files.ts";

export { NodeError } from "./node-error.ts";

export const COCO_VERSION = "0.1.0";

/**
 * One running node: the wiring of its parts and its lifecycle. Its state comes from its
 * directory (boot.ts); consensus, the node-to-node channels, signatures (signing.ts), snapshots,
 * governance (gov-host.ts), the service's lifecycle transactions (service.ts), join admission
 * and recovery are each in their own file. The HTTPS layer (src/rpc) sees it through rpc-port.ts.
 */
export class CocoNode {
  private snapshots!: Snapshots;
  private snapshotTransfer!: SnapshotTransfer;
  private jsEngine!: JsEngine;
  /** Judges joiners' attestations; only in-process code (tests) can swap it for one with other roots. */
  joinVerifier = new JoinVerifier();
  /** In-process only (tests): stand-ins for this node's attestation (a fake configfs-tsm). */
  attestationSeams: ProviderSeams = {};
  /** Seals the identity with the platform's key (obtained once, at boot). */
  private readonly identityStore: IdentityStore;
  readonly recoveryShares: RecoveryShares;
  readonly signing: SignatureScheduler;
  private service!: ServiceLifecycle;
  private closing = false;
  private tickTimer: NodeJS.Timeout | undefined;
  /** Where joiners may be answered from, kept across a step-down (admission.ts). */
  private readonly settledPoints = new SettledPoints();
  private channels: NodeChannels | undefined;
  private readonly certificates: NodeCertificates;
  private peers!: Peers;
  private readonly reads = new ReadIndex();
  private replica: Replica | undefined;
  private readonly failStopListeners: Array<(error: Error) => void> = [];
  private resolvePrimary: () => void = () => {};
  /** Resolves once this node is primary (a single-node service elects itself at start). */
  readonly primaryElected = new Promise<void>((resolve) => {
    this.resolvePrimary = resolve;
  });
  private readonly follower: CommitFollower;
  readonly startupSeqno: number;
  /** Seqno of the snapshot this start restored from; 0 if it replayed the whole ledger. */
  readonly startupSnapshotSeqno: number;
  readonly identity: NodeIdentity;
  readonly state: LedgerState;
  private readonly files: LedgerFiles;
  private readonly sink: EntrySink;
  private readonly stateFiles: StateFiles;
  /** The commit rounds' time line, when COCO_COMMIT_TRACE asks for it (benchmarks only). */
  private readonly trace: CommitTrace | undefined;

  private constructor(
    readonly config: NodeConfig,
    readonly env: Environment,
    readonly log: Logger,
    booted: Booted,
  ) {
    this.identity = booted.identity;
    this.state = booted.state;
    this.files = booted.files;
    this.sink = booted.sink;
    this.stateFiles = booted.stateFiles;
    this.identityStore = booted.identityStore;
    this.startupSeqno = booted.state.lastSeqno;
    this.startupSnapshotSeqno = booted.snapshotSeqno;
    this.recoveryShares = new RecoveryShares({
      log,
      isPrimary: () => this.isPrimary,
      begin: () => this.state.store.begin(),
      commit: (tx) => this.commit(tx),
      ledgerSecret: () => this.state.secrets.current,
      randomBytes: (n) => this.env.randomBytes(n),
    });
    const node = this;
    this.trace = createCommitTrace(this.nodeId);
    this.signing = new SignatureScheduler(
      {
        state: this.state,
        env,
        get isPrimary() {
          return node.isPrimary;
        },
        get closing() {
          return node.closing;
        },
        signed: (seqno) => this.snapshots.afterSignature(seqno),
        trace: this.trace,
      },
      {
        ...config.signatures,
        maxInFlight:
          config.signatures.maxInFlight ?? defaultMaxInFlight(serviceCurveOf(this.identity.serviceCertPem)),
      },
    );
    this.follower = new CommitFollower({
      log,
      stateFiles: this.stateFiles,
      files: this.files,
      snapshots: () => this.snapshots,
      raft: () => this.replica?.raft,
    });
    this.certificates = new NodeCertificates({
      identity: this.identity,
      identityStore: this.identityStore,
      log,
      state: this.state,
      serviceCertFile: config.serviceCertFile,
      now: () => this.env.now(),
      channels: () => this.channels,
    });
  }

  get nodeId(): string {
    return this.identity.nodeId;
  }

  static async start(
    config: NodeConfig,
    env: Environment,
    log: Logger,
    seams: { attestationSeams?: ProviderSeams } = {},
  ): Promise<CocoNode> {
    if (config.trustJoinersWhileOpening) log.warn(INSTANT_TRUST_WARNING);
    const booted = await bootNode(config, env, log, seams);
    const { state, recoveredFrom, entries } = booted;
    const node = new CocoNode(config, env, log, booted);
    node.attestationSeams = seams.attestationSeams ?? {};
    node.service = new ServiceLifecycle(
      {
        config,
        env,
        log,
        identity: node.identity,
        state,
        identityStore: node.identityStore,
        recoveryShares: node.recoveryShares,
        nodePort: () => node.channels?.port ?? config.nodeAddress.port,
        mustCommit: (tx) => node.mustCommit(tx),
        sign: () => node.signing.sign(),
      },
      recoveredFrom !== undefined,
    );
    node.jsEngine = await createJsEngine({
      env,
      logger: (level, message) => log[level]({ script: true }, message),
    });
    node.snapshots = new Snapshots(
      `${config.dir}/snapshots`,
      state,
      config.snapshots.txInterval,
      log,
      node.startupSnapshotSeqno,
    );
    node.snapshotTransfer = new SnapshotTransfer({
      log,
      state,
      files: node.files,
      snapshots: node.snapshots,
      replica: () => node.replica,
      serviceCertPem: () => node.identity.serviceCertPem,
      closing: () => node.closing,
      requestNode: (to, message, timeoutMs) => node.requestNode(to, message, timeoutMs),
      track: (work) => node.follower.track(work),
      // An installed snapshot may settle configuration changes this node never saw: written at once.
      installedAt: (seqno) => node.stateFiles.noteCommit(seqno, true),
    });
    node.channels = await NodeChannels.listen({
      nodeId: node.nodeId,
      certPem: node.identity.nodeCertPem,
      privateKeyPem: node.identity.nodePrivateKeyPem,
      serviceCertPem: node.identity.serviceCertPem,
      listen: config.nodeAddress,
      log,
    });
    node.peers = new Peers({
      nodeId: node.nodeId,
      log,
      state,
      channels: node.channels,
      joinPeers: booted.joinPeers,
      endorsedCertificate: (id) => node.endorsedCertificate(id),
      consensusStatus: () => node.consensusStatus,
      ownRequest: (from, message) =>
        (message as { kind?: unknown } | null)?.kind === INSTALL_SNAPSHOT
          ? node.snapshotTransfer.install(from, parseInstallSnapshot(message))
          : undefined,
    });
    await node.service.begin(booted, () => node.files.whenDurable(state.lastSeqno));
    if (node.startConsensus(booted)) {
      await node.primaryElected;
      if (recoveredFrom) await node.service.beginRecovery(recoveredFrom, entries);
      node.openWhenReady();
    }
    node.signing.start();
    return node;
  }

  /** Starts consensus (consensus-start.ts); true if this node leads at once. */
  private startConsensus(booted: Booted): boolean {
    const replica = createReplica(
      {
        nodeId: this.nodeId,
        config: this.config,
        env: this.env,
        log: this.log,
        state: this.state,
        files: this.files,
        stateFiles: this.stateFiles,
        channels: this.channels!,
        trace: this.trace,
        hooks: {
          roleChanged: (change) => this.roleChanged(change),
          committed: (seqno) => this.follower.committed(seqno),
          readReady: (requestId, seqno) => this.reads.ready(requestId, seqno),
          applied: (entry) => this.snapshots.afterReplicated(entry),
          rolledBack: (seqno) => this.snapshots.rolledBack(seqno),
          sendSnapshot: (to, seqno) => this.snapshotTransfer.send(to, seqno),
          beforeBatch: () => this.signing.signForWaiters(),
          failed: (error) => this.failStopped(error),
        },
      },
      booted,
    );
    this.replica = replica;
    this.sink.replica = replica;
    this.files.onDurable(() => this.signing.signForWaiters());
    const trace = this.trace;
    if (trace) this.files.onDurable((seqno) => trace.durable(seqno));
    this.files.setBeforeBatch(() => this.signing.signForWaiters());
    const alone = runReplica(replica, this.nodeId);
    this.peers.refresh();
    this.tickTimer = setInterval(() => this.onTick(), this.config.consensus.tickMs);
    this.tickTimer.unref();
    return alone;
  }

  get isPrimary(): boolean {
    return this.replica?.raft.canPropose === true;
  }

  /** The node this one believes is primary, or null. */
  get primaryId(): string | null {
    return this.replica?.raft.leader ?? null;
  }

  get consensusStatus() {
    return this.replica?.raft.status();
  }

  /** Entries `from`..`to` that consensus still holds in memory (those after its log start). */
  consensusEntries(from: number, to: number): Array<{ seqno: number; data: Uint8Array }> {
    return this.replica?.raft.entries(from, to) ?? [];
  }

  private onTick(): void {
    if (this.isPrimary) {
      const { state } = this;
      this.settledPoints.observe(state.commitSeqno, this.consensusStatus, (seqno) => state.viewOf(seqno));
    }
    this.replica?.tick();
    if (this.failure) return;
    try {
      this.stateFiles.saveCommitHint();
    } catch (e) {
      this.replica?.failStop(e);
      return;
    }
    this.certificates.check();
    this.peers.tick();
    if (this.isPrimary) this.openWhenReady();
  }

  /** Why the certificates the store records for this node are not the ones it serves, if so. */
  get certificateProblem(): { reason: string; permanent: boolean } | undefined {
    return this.certificates.problem;
  }

  /**
   * Called once if a write of the ledger or of the node's state failed (a full disk, an I/O
   * error): consensus has stopped here, and the node must stop serving and exit (fail-stop).
   */
  onFailStop(listener: (error: Error) => void): void {
    this.failStopListeners.push(listener);
  }

  /** The failed write that stopped this node, if one did. */
  get failure(): Error | undefined {
    return this.replica?.failure;
  }

  private failStopped(error: Error): void {
    clearInterval(this.tickTimer);
    this.signing.stop();
    for (const listener of this.failStopListeners) listener(error);
  }

  /** Called with the node's certificates after governance renewed either of them. */
  onCertificatesRenewed(listener: (certs: ServedCertificates) => void): void {
    this.certificates.onRenewed(listener);
  }

  /** Whether `nodeId` is a node this one talks to (peers.ts): never a Pending one. */
  servesAsPeer(nodeId: string): boolean {
    return this.peers.servesAsPeer(nodeId);
  }

  /**
   * A linearizable read without a write: the primary confirms with a quorum that it still leads
   * (read index) and returns the commit point a read must reflect. Rejects with NotPrimaryError
   * on a node that is not, or stops being, the primary.
   */
  linearizableReadPoint(): Promise<number> {
    return this.reads.request(this.replica?.raft, () => this.replica?.process());
  }

  /** Sends a request to another node of the service over the node-to-node channel. */
  requestNode(to: string, message: unknown, timeoutMs: number, options?: RequestOptions): Promise<unknown> {
    return this.peers.request(to, message, timeoutMs, options);
  }

  /** Each peer's channel as this node sees it (connections, last frame received). */
  peerLinks(): Record<string, PeerStats> {
    return this.channels?.stats() ?? {};
  }

  /** Serves requests from other nodes (forwarded client calls). */
  onNodeRequest(handler: (from: string, message: unknown) => Promise<unknown>): void {
    this.peers.onRequest(handler);
  }

  /** Where clients reach a node, from `nodes.info`. */
  rpcAddressOf(nodeId: string): string | undefined {
    return this.nodes().find(([id]) => id === nodeId)?.[1].rpc_address;
  }

  /** Every node in `nodes.info`, as this node's store has it. */
  nodes(): Array<[string, NodeInfo]> {
    return this.state.nodes();
  }

  openWhenReady(): void {
    this.service.openWhenReady();
  }

  /** True when `nodes.info` already records the node making this join request. */
  hasJoined(request: JoinRequest): boolean {
    return hasJoined(this, request);
  }

  /** Admits a joining node (see src/node/admission.ts): Pending until the members trust it. */
  admit(request: JoinRequest): Promise<JoinResponse> {
    return admit(this.admissionHost(), request);
  }

  private admissionHost(): AdmissionHost {
    return {
      log: this.log,
      env: this.env,
      identity: this.identity,
      platform: this.config.attestation.platform,
      trustJoinersWhileOpening: this.config.trustJoinersWhileOpening,
      verifier: this.joinVerifier,
      nodes: () => this.nodes(),
      serviceStatus: () => this.serviceInfo().status,
      readSmallMap: (map) => this.state.readSmallMap(map),
      settled: (joinerId) => {
        const { state } = this;
        const at = Math.min(
          state.lastSeqno,
          this.settledPoints.for(joinerId, state.commitSeqno, this.consensusStatus, (seqno) =>
            state.viewOf(seqno),
          ),
        );
        if (at < state.store.compactedVersion || at > state.store.version) return undefined;
        return nodeRecordsAt(state.store, at);
      },
      begin: () => this.state.store.begin(),
      mustCommit: (tx) => this.mustCommit(tx),
    };
  }

  /** A node's certificate as `nodes.endorsed_certificates` holds it in this node's store. */
  endorsedCertificate(nodeId: string): string | undefined {
    return readEndorsedCertificate((map, key) => this.state.store.read(map, key), nodeId);
  }

  private roleChanged(change: RoleChange): void {
    this.log.info({ role: change.role, view: change.view, primary: change.leader }, "consensus role changed");
    if (change.role !== "primary") return;
    this.state.enterView(change.view);
    // A new primary commits in its own view only: sign at once, covering everything inherited.
    // Not a recovering node before its first transaction trusts it (see recoveryNotBegun).
    if (this.state.lastSeqno > 0 && !this.service.recoveryNotBegun) this.signing.sign();
    this.resolvePrimary();
  }

  /** `POST /gov/recovery/members/{id}:recover`, while this node recovers a lost service. */
  acceptRecoveryShare(tx: Tx, memberId: string, payload: Uint8Array): { message: string } {
    return this.service.acceptRecoveryShare(tx, memberId, payload);
  }

  /** Signed governance requests, run as transactions on the primary (see src/rpc/gov.ts). */
  readonly governance: GovernanceWrite = {
    write: (bytes, expect, work) => governanceWrite(nodeGovHost(this.govDeps()), bytes, expect, work),
  };

  private govDeps(): GovHostDeps {
    const node = this;
    const { log, env, jsEngine, state, identity, identityStore, recoveryShares, signing, snapshots, files } =
      this;
    return {
      ...{ log, env, jsEngine, state, identity, identityStore, recoveryShares, signing, snapshots, files },
      get isPrimary() {
        return node.isPrimary;
      },
      commit: (tx) => this.commit(tx),
    };
  }

  /** Opens the service without a vote: only with `openAtNodes` (tests, benchmarks). */
  openService(): void {
    this.service.open();
  }

  serviceInfoOrNull(): ServiceInfo | null {
    return this.service.infoOrNull();
  }

  serviceInfo(): ServiceInfo {
    return this.service.info();
  }

  private mustCommit(tx: Tx): void {
    const outcome = this.commit(tx);
    if (!outcome.ok) throw new NodeError("an internal transaction conflicted");
  }

  /** Commits an executed transaction and keeps the signature and snapshot cadence. */
  commit(tx: Tx, claimsDigest: Uint8Array = ZERO_DIGEST): CommitOutcome {
    if (this.closing) throw new NodeError("node is stopping");
    const outcome = this.state.commitTx(tx, claimsDigest);
    if (outcome.ok && outcome.seqno !== null) this.signing.afterCommit();
    return outcome;
  }

  /** Respond-on-commit: the next write batch ends with a signature (see signing.ts). */
  wantCommit(): void {
    this.signing.wantCommit();
  }

  signIfPending(): void {
    this.signing.signIfPending();
  }

  /** Rotates the ledger secret (governance's `trigger_ledger_rekey`). */
  rekey(): number {
    return rekey(this.govDeps());
  }

  /** Everything appended so far, written and synced. */
  flush(): Promise<void> {
    return this.files.whenDurable(this.state.lastSeqno);
  }

  async close(): Promise<void> {
    if (this.closing) return;
    this.signing.signIfPending();
    this.closing = true;
    this.signing.stop();
    clearInterval(this.tickTimer);
    // After a failed write the disk is not to be trusted: nothing more is flushed or waited for.
    if (!this.failure) {
      await this.stateFiles.flushCommitHint();
      await this.files.whenDurable(this.state.lastSeqno);
    }
    this.snapshots.stop();
    await this.follower.settled();
    await this.channels?.close();
    await this.files.close();
    this.state.abortWaiters("node stopped before the transaction committed");
    this.reads.abortAll();
  }
}
