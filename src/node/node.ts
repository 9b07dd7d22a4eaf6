import { rmSync } from "node:fs";
import { join } from "node:path";
import type { Logger } from "pino";
import { Raft, type RoleChange } from "../consensus/index.ts";
import { GovError, type GovernanceWrite, governanceWrite } from "../gov/index.ts";
import { createJsEngine, type JsEngine } from "../js/index.ts";
import type { Tx } from "../kv/index.ts";
import {
  type CommitOutcome,
  type DecodedEntry,
  jsonBytes,
  type LedgerFiles,
  type LedgerState,
  type NodeInfo,
  NotPrimaryError,
  parseJsonBytes,
  type ServiceInfo,
  SINGLETON_KEY,
  Tables,
  utf8,
  ZERO_DIGEST,
} from "../ledger/index.ts";
import { NodeChannels, type PeerStats, type RequestOptions } from "../net/index.ts";
import type { ProviderSeams } from "../tee/index.ts";
import {
  type AdmissionHost,
  admit,
  hasJoined,
  INSTANT_TRUST_WARNING,
  readEndorsedCertificate,
} from "./admission.ts";
import { type Booted, bootNode, consensusLog, type EntrySink } from "./boot.ts";
import { CertificateAdopter } from "./cert-renewal.ts";
import type { NodeConfig } from "./config.ts";
import type { Environment } from "./env.ts";
import { nodeGovHost } from "./gov-host.ts";
import { addLedgerSecrets, type NodeIdentity, writeFileAtomic } from "./identity.ts";
import { type JoinPeer, type JoinRequest, type JoinResponse, JoinVerifier } from "./join.ts";
import { NodeError } from "./node-error.ts";
import { ReadIndex } from "./read-index.ts";
import { RecoveryCoordinator } from "./recovery.ts";
import { RecoveryShares } from "./recovery-shares.ts";
import { eventLoopScheduler, Replica } from "./replica.ts";
import type { IdentityStore } from "./sealed-identity.ts";
import { beginRecoveredService, createService, type ServiceHost } from "./service.ts";
import { SignatureScheduler } from "./signing.ts";
import { INSTALL_SNAPSHOT, parseInstallSnapshot } from "./snapshot-message.ts";
import { SnapshotTransfer } from "./snapshot-transfer.ts";
import { Snapshots } from "./snapshots.ts";
import { RECOVERY_FILE, type StateFiles } from "./state-files.ts";

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
  /** Set while this node recovers a lost service and waits for the recovery members' shares. */
  private recovery: RecoveryCoordinator | undefined;
  /**
   * A recovering node signs nothing before its first transaction (`beginRecovery`, service.ts)
   * records it as the recovered service's trusted node: backups and auditors accept only
   * signatures by nodes the ledger already trusts.
   */
  private recoveryNotBegun = false;
  private nodeRequestHandler: ((from: string, message: unknown) => Promise<unknown>) | undefined;
  private closing = false;
  private tickTimer: NodeJS.Timeout | undefined;
  private channels: NodeChannels | undefined;
  private readonly certificateListeners: Array<
    (certs: { nodeCertPem: string; serviceCertPem: string }) => void
  > = [];
  private readonly certificates: CertificateAdopter;
  private peersVersion = -1;
  private ticksSincePeerRefresh = 0;
  private readonly reads = new ReadIndex();
  /** Nodes named in the join answer; used until the replicated `nodes.info` lists them. */
  private joinPeers: JoinPeer[] = [];
  private replica: Replica | undefined;
  private resolvePrimary: () => void = () => {};
  /** Resolves once this node is primary (a single-node service elects itself at start). */
  readonly primaryElected = new Promise<void>((resolve) => {
    this.resolvePrimary = resolve;
  });
  /** File work started on commit (chunk renames, snapshot files); close() waits for it. */
  private readonly background = new Set<Promise<unknown>>();
  readonly startupSeqno: number;
  /** Seqno of the snapshot this start restored from; 0 if it replayed the whole ledger. */
  readonly startupSnapshotSeqno: number;
  readonly identity: NodeIdentity;
  readonly state: LedgerState;
  private readonly files: LedgerFiles;
  private readonly sink: EntrySink;
  private readonly stateFiles: StateFiles;

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
    this.joinPeers = booted.joinPeers;
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
      },
      config.signatures,
    );
    this.certificates = new CertificateAdopter({
      identity: this.identity,
      log,
      now: () => this.env.now(),
      storedCertificates: () => {
        const endorsed = this.state.store.read(Tables.nodesEndorsedCertificates, utf8(this.nodeId));
        return {
          nodeCertPem: endorsed ? new TextDecoder().decode(endorsed) : this.identity.nodeCertPem,
          serviceCertPem: this.serviceInfoOrNull()?.cert ?? this.identity.serviceCertPem,
        };
      },
      adopt: (certs) => this.adoptCertificates(certs),
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
    node.recoveryNotBegun = recoveredFrom !== undefined;
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
      track: (work) => node.track(work),
      installedAt: (seqno) => node.stateFiles.noteCommit(seqno),
    });
    node.channels = await NodeChannels.listen({
      nodeId: node.nodeId,
      certPem: node.identity.nodeCertPem,
      privateKeyPem: node.identity.nodePrivateKeyPem,
      serviceCertPem: node.identity.serviceCertPem,
      listen: config.nodeAddress,
      log,
    });
    if (recoveredFrom) {
      log.warn(
        { seqno: recoveredFrom.lastSeqno, view: state.view },
        "recovering a service from its ledger: public state replayed; private state waits for the recovery members' shares",
      );
    } else if (booted.fresh) {
      createService(node.serviceHost(), booted.ownSnp);
      log.info({ nodeId: node.nodeId }, "created a new service");
      await node.files.whenDurable(state.lastSeqno);
    } else if (entries.length === 0) {
      log.info("waiting for the primary to replicate the ledger");
    } else {
      log.info(
        { seqno: state.lastSeqno, view: state.view, snapshot: booted.snapshotSeqno || null },
        "restarted from the ledger",
      );
    }
    if (node.startConsensus(booted)) {
      await node.primaryElected;
      if (recoveredFrom) await node.beginRecovery(recoveredFrom, entries);
      node.openWhenReady();
    }
    node.signing.start();
    return node;
  }

  /** Hands the ledger to consensus (its log: see consensusLog); true if this node leads at once. */
  private startConsensus(booted: Booted): boolean {
    const { recoveredFrom, snapshotSeqno } = booted;
    const committedSeqno = this.state.commitSeqno;
    const log = consensusLog(booted);
    const raft = new Raft({
      id: this.nodeId,
      random: () => new DataView(this.env.randomBytes(4).buffer).getUint32(0) / 2 ** 32,
      log,
      hardState: this.stateFiles.readHardState(),
      ...(!recoveredFrom && committedSeqno > snapshotSeqno ? { commitSeqno: committedSeqno } : {}),
      electionTicksMin: this.config.consensus.electionTicksMin,
      electionTicksMax: this.config.consensus.electionTicksMax,
    });
    this.replica = new Replica(
      raft,
      this.state,
      this.files,
      {
        send: (to, message) => this.channels?.send(to, message),
        saveHardState: (hard) => this.stateFiles.saveHardState(hard),
        roleChanged: (change) => this.roleChanged(change),
        committed: (seqno) => this.committed(seqno),
        readReady: (requestId, seqno) => this.reads.ready(requestId, seqno),
        applied: (entry) => this.snapshots.afterReplicated(entry),
        rolledBack: (seqno) => this.snapshots.rolledBack(seqno),
        sendSnapshot: (to, seqno) => this.snapshotTransfer.send(to, seqno),
      },
      this.log,
      eventLoopScheduler,
    );
    this.channels?.onMessage((from, message) => this.replica?.step(from, message));
    this.channels?.onRequest((from, message) => this.serveNodeRequest(from, message));
    this.sink.replica = this.replica;
    this.files.onDurable(() => this.signing.signForWaiters());
    this.files.setBeforeBatch(() => this.signing.signForWaiters());
    // Alone in its configuration, a node need not wait out an election timeout.
    const configs = raft.activeConfigs();
    const alone =
      configs.length > 0 &&
      configs.every((c) => c.length === 1 && c[0] === this.nodeId) &&
      raft.campaignNow();
    this.replica.process();
    this.refreshPeers();
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

  private onTick(): void {
    this.replica?.tick();
    this.stateFiles.saveCommitHint();
    this.certificates.check();
    // Also every second: a retiring node stays a peer until consensus stops tracking it.
    if (this.state.nodesInfoVersion !== this.peersVersion || ++this.ticksSincePeerRefresh >= 10)
      this.refreshPeers();
    if (this.isPrimary) this.openWhenReady();
  }

  /** Why the certificates the store records for this node are not the ones it serves, if so. */
  get certificateProblem(): { reason: string; permanent: boolean } | undefined {
    return this.certificates.problem;
  }

  /** Called with the node's certificates after governance renewed either of them. */
  onCertificatesRenewed(listener: (certs: { nodeCertPem: string; serviceCertPem: string }) => void): void {
    this.certificateListeners.push(listener);
  }

  /**
   * Serves renewed certificates: RPC and node-to-node TLS, signatures (which carry the node
   * certificate), the sealed identity, and the service certificate file clients pin.
   */
  private adoptCertificates(certs: {
    nodeCertPem: string;
    serviceCertPem: string;
    serviceRenewed: boolean;
  }): void {
    const { nodeCertPem, serviceCertPem } = certs;
    this.identity.nodeCertPem = nodeCertPem;
    this.identity.serviceCertPem = serviceCertPem;
    this.identityStore.save(this.identity);
    if (certs.serviceRenewed) {
      try {
        writeFileAtomic(this.config.serviceCertFile, serviceCertPem, 0o644);
      } catch (e) {
        this.log.error(
          { err: e, file: this.config.serviceCertFile },
          "could not write the renewed service certificate",
        );
      }
    }
    this.state.renewNodeCertificate(nodeCertPem);
    this.channels?.renewCertificates(nodeCertPem, serviceCertPem);
    for (const listener of this.certificateListeners) listener({ nodeCertPem, serviceCertPem });
  }

  /**
   * Keeps a channel to every node that is Trusted in this node's store, or that consensus still
   * counts or replicates to (a retiring node, so it learns that its removal committed and a
   * retiring primary can hand over). Pending nodes are never peers. Each peer is pinned to its
   * endorsed certificate: the channels accept that certificate and no other for it.
   */
  private refreshPeers(): void {
    this.peersVersion = this.state.nodesInfoVersion;
    this.ticksSincePeerRefresh = 0;
    if (!this.channels) return;
    const wanted = new Set<string>();
    const known = this.nodes();
    for (const [id, info] of known) {
      if (id === this.nodeId || !info.node_address || !this.servesAsPeer(id)) continue;
      const certificate = this.endorsedCertificate(id);
      if (!certificate) continue;
      try {
        this.channels.setPeer(id, info.node_address, certificate);
        wanted.add(id);
      } catch (e) {
        this.log.error(
          { err: e, node: id },
          "cannot reach a trusted node: its recorded address or certificate is unusable",
        );
      }
    }
    if (known.length === 0) {
      for (const peer of this.joinPeers) {
        wanted.add(peer.node_id);
        this.channels.setPeer(peer.node_id, peer.node_address, peer.certificate);
      }
    }
    for (const id of Object.keys(this.channels.stats())) if (!wanted.has(id)) this.channels.removePeer(id);
  }

  /**
   * Whether `nodeId` is one of the service's nodes as far as this node talks to it: Trusted in
   * this node's store, or still counted or replicated to by consensus (a retiring node). Pending
   * nodes never are: they are neither peers nor senders of forwarded calls.
   */
  servesAsPeer(nodeId: string): boolean {
    const info = this.nodes().find(([id]) => id === nodeId)?.[1];
    if (!info || info.status === "Pending") return false;
    if (info.status === "Trusted") return true;
    const status = this.replica?.raft.status();
    return (
      status?.configs.some((c) => c.nodes.includes(nodeId)) === true || status?.peers?.[nodeId] !== undefined
    );
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
    if (!this.channels) return Promise.reject(new NodeError("no node-to-node channels"));
    return this.channels.request(to, message, timeoutMs, options);
  }

  /** Each peer's channel as this node sees it (connections, last frame received). */
  peerLinks(): Record<string, PeerStats> {
    return this.channels?.stats() ?? {};
  }

  /** Serves requests from other nodes (forwarded client calls). */
  onNodeRequest(handler: (from: string, message: unknown) => Promise<unknown>): void {
    this.nodeRequestHandler = handler;
  }

  private serveNodeRequest(from: string, message: unknown): Promise<unknown> {
    if ((message as { kind?: unknown } | null)?.kind === INSTALL_SNAPSHOT) {
      return this.snapshotTransfer.install(from, parseInstallSnapshot(message));
    }
    if (!this.nodeRequestHandler) return Promise.reject(new NodeError("this node serves no requests yet"));
    return this.nodeRequestHandler(from, message);
  }

  /** Where clients reach a node, from `nodes.info`. */
  rpcAddressOf(nodeId: string): string | undefined {
    return this.nodes().find(([id]) => id === nodeId)?.[1].rpc_address;
  }

  /** Every node in `nodes.info`, as this node's store has it. */
  nodes(): Array<[string, NodeInfo]> {
    return this.state.nodes();
  }

  /** With `openAtNodes` set (tests, benchmarks), a new service opens once that many nodes are trusted. */
  openWhenReady(): void {
    const info = this.serviceInfoOrNull();
    if (info?.status !== "Opening" || this.config.openAtNodes === 0) return;
    if (this.state.trustedNodes().length < this.config.openAtNodes) return;
    try {
      this.openService();
    } catch (e) {
      if (!(e instanceof NotPrimaryError)) throw e;
    }
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
      endorsedCertificate: (id) => this.endorsedCertificate(id),
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
    if (this.state.lastSeqno > 0 && !this.recoveryNotBegun) this.signing.sign();
    this.resolvePrimary();
  }

  /** What the service's lifecycle transactions (service.ts) use of this node. */
  private serviceHost(): ServiceHost {
    return {
      config: this.config,
      identity: this.identity,
      state: this.state,
      nodePort: this.channels?.port ?? this.config.nodeAddress.port,
      mustCommit: (tx) => this.mustCommit(tx),
    };
  }

  /**
   * A recovering node, once primary of the recovered ledger: the new service identity, endorsing
   * the previous one, then waiting for the recovery members' shares.
   */
  private async beginRecovery(
    recoveredFrom: NonNullable<Booted["recoveredFrom"]>,
    entries: DecodedEntry[],
  ): Promise<void> {
    await beginRecoveredService(this.serviceHost(), this.env, recoveredFrom.previousServiceCertPem);
    this.recoveryNotBegun = false;
    this.signing.sign();
    this.log.info(
      { previousServiceCert: recoveredFrom.previousServiceCertPem.slice(0, 64) },
      "started a recovered service",
    );
    this.recovery = RecoveryCoordinator.start(
      {
        log: this.log,
        state: this.state,
        keepSecrets: (secrets) => {
          addLedgerSecrets(this.identity, secrets);
          this.identityStore.save(this.identity);
        },
        commitAndSign: (tx) => {
          this.mustCommit(tx);
          this.signing.sign();
        },
        finished: () => {
          this.recovery = undefined;
          rmSync(join(this.config.dir, RECOVERY_FILE), { force: true });
          void this.recoveryShares.refresh();
        },
      },
      entries,
    );
  }

  /** `POST /gov/recovery/members/{id}:recover`, while this node recovers a lost service. */
  acceptRecoveryShare(tx: Tx, memberId: string, payload: Uint8Array): { message: string } {
    if (!this.recovery) {
      throw new GovError(400, "ServiceNotWaitingForRecoveryShares", "this node is not recovering a service");
    }
    return this.recovery.acceptShare(tx, memberId, payload);
  }

  /** Signed governance requests, run as transactions on the primary (see src/rpc/gov.ts). */
  readonly governance: GovernanceWrite = {
    write: (bytes, expect, work) => governanceWrite(this.govHost(), bytes, expect, work),
  };

  private govHost() {
    const node = this;
    return nodeGovHost({
      log: this.log,
      env: this.env,
      jsEngine: this.jsEngine,
      get isPrimary() {
        return node.isPrimary;
      },
      begin: () => this.state.store.begin(),
      commit: (tx) => this.commit(tx),
      service: () => ({
        certPem: this.identity.serviceCertPem,
        privateKeyPem: this.identity.servicePrivateKeyPem,
      }),
      latestSecretVersion: () => this.state.secrets.current.version,
      rekey: () => this.rekey(),
      snapshot: () => {
        this.snapshots.request();
        this.signing.sign();
      },
      ledgerChunk: () => {
        this.files.requestChunk();
        this.signing.sign();
      },
      refreshRecoveryShares: () => void this.recoveryShares.refresh(),
    });
  }

  /**
   * Opens the service without a vote: only for services configured with `openAtNodes` (tests,
   * benchmarks). Members open a service with `transition_service_to_open`.
   */
  openService(): void {
    const info = this.serviceInfo();
    if (info.status === "Open") return;
    const tx = this.state.store.begin();
    tx.map(Tables.serviceInfo).set(SINGLETON_KEY, jsonBytes({ ...info, status: "Open" }));
    this.mustCommit(tx);
    this.state.emitSignature();
    this.log.info("service is open");
    void this.recoveryShares.refresh();
  }

  /** Service info as this node's store has it; null before a joining node has received it. */
  serviceInfoOrNull(): ServiceInfo | null {
    const bytes = this.state.store.read(Tables.serviceInfo, SINGLETON_KEY);
    return bytes ? parseJsonBytes<ServiceInfo>(bytes) : null;
  }

  serviceInfo(): ServiceInfo {
    const info = this.serviceInfoOrNull();
    if (!info) throw new NodeError("service info is missing from the store");
    return info;
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

  /** Consensus moved the commit point: mark chunks committed, and write a pending snapshot. */
  private committed(commit: number): void {
    this.stateFiles.noteCommit(commit);
    this.track(
      this.files
        .markCommitted(commit)
        .catch((e) => this.log.error({ err: e }, "could not mark ledger chunks committed")),
    );
    this.track(
      this.snapshots
        .committed(commit)
        .then((compactTo) => {
          // Consensus forgets entries before the older snapshot kept; a node that needs them gets that snapshot.
          const raft = this.replica?.raft;
          if (
            compactTo !== undefined &&
            raft &&
            compactTo > raft.logStart.seqno &&
            compactTo <= raft.commitSeqno
          ) {
            raft.compact(compactTo);
          }
        })
        .catch((e) => this.log.error({ err: e }, "could not write a snapshot")),
    );
  }

  private track(work: Promise<unknown>): void {
    this.background.add(work);
    work.finally(() => this.background.delete(work));
  }

  /** Rotates the ledger secret (governance's `trigger_ledger_rekey`). */
  rekey(): number {
    const key = this.env.randomBytes(32);
    const seqno = this.state.rekey(key, (version, newKey) => {
      this.identity.ledgerSecrets.push({ version, key: Buffer.from(newKey).toString("base64") });
      this.identityStore.save(this.identity);
    });
    this.signing.sign();
    this.log.info({ seqno }, "rotated the ledger secret");
    // The shares must open the newest secret (older ones are chained to it in the ledger).
    void this.recoveryShares.refresh();
    return seqno;
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
    await this.stateFiles.flushCommitHint();
    await this.files.whenDurable(this.state.lastSeqno);
    await Promise.all(this.background);
    await this.channels?.close();
    await this.files.close();
    this.state.abortWaiters("node stopped before the transaction committed");
    this.reads.abortAll();
  }
}
