import { createPublicKey, X509Certificate } from "node:crypto";
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import type { Logger } from "pino";
import { type Entry, type HardState, type PersistedLog, Raft, type RoleChange } from "../consensus/index.ts";
import {
  certFingerprint,
  endorsePreviousService,
  issueNodeCertificate,
  normalizePem,
  p384PrivateKey,
  parseCertificate,
} from "../crypto/index.ts";
import {
  type Constitution,
  defaultConstitution,
  SINGLETON as GOV_SINGLETON,
  GovError,
  GovTables,
  joinConstitution,
  jsConstitution,
} from "../gov/index.ts";
import { createJsEngine, type JsEngine } from "../js/index.ts";
import type { Tx } from "../kv/index.ts";
import { type DecodedEntry, EntryType, LedgerFiles, LedgerSecrets } from "../ledger/index.ts";
import { NodeChannels } from "../net/index.ts";
import {
  type AttestationView,
  attestationProvider,
  attestationView,
  codeMeasurement,
  type ProviderSeams,
  parseSnpReport,
} from "../tee/index.ts";
import { renewalProblem } from "./cert-renewal.ts";
import type { NodeConfig } from "./config.ts";
import type { Environment } from "./env.ts";
import { serviceHooks } from "./gov-hooks.ts";
import { type GovEffects, type GovHost, governanceWrite } from "./governance.ts";
import {
  createIdentity,
  hasIdentity,
  hostAltNames,
  loadIdentity,
  type NodeIdentity,
  saveIdentity,
  serviceKid,
  writeFileAtomic,
  writeFileAtomicAsync,
} from "./identity.ts";
import {
  checkJoinProof,
  type JoinRequest,
  type JoinResponse,
  JoinVerifier,
  joinerNodeId,
  NODE_ATTESTATIONS,
  readJoinPolicy,
  wrapSecrets,
} from "./join.ts";
import { joinService } from "./join-client.ts";
import {
  type CommitOutcome,
  type LedgerSink,
  LedgerState,
  NotPrimaryError,
  ZERO_DIGEST,
} from "./ledger-state.ts";
import { RecoveryCoordinator } from "./recovery.ts";
import { RecoveryShares, SHARES_INPUTS } from "./recovery-shares.ts";
import { eventLoopScheduler, Replica } from "./replica.ts";
import { INSTALL_SNAPSHOT, parseInstallSnapshot } from "./snapshot-message.ts";
import { SnapshotTransfer } from "./snapshot-transfer.ts";
import { loadUsableSnapshot, Snapshots } from "./snapshots.ts";
import {
  jsonBytes,
  type NodeInfo,
  parseJsonBytes,
  type ServiceInfo,
  SINGLETON_KEY,
  Tables,
  utf8,
} from "./tables.ts";

export { NodeError } from "./node-error.ts";

import { NodeError } from "./node-error.ts";

export const COCO_VERSION = "0.1.0";

/** The last commit point this node saw, so a restart knows which configurations are settled. */
const COMMIT_FILE = "commit.json";

function readCommitHint(path: string): number {
  if (!existsSync(path)) return 0;
  try {
    const value = (JSON.parse(readFileSync(path, "utf8")) as { commit_seqno?: unknown }).commit_seqno;
    return Number.isSafeInteger(value) && (value as number) >= 0 ? (value as number) : 0;
  } catch {
    return 0;
  }
}

/** How often the signature timer looks at the age of unsigned transactions (see signIfDue). */
function signatureCheckMs(maxIntervalMs: number): number {
  return Math.max(1, Math.floor(maxIntervalMs / 4));
}

/** The consensus hard state (view and vote), written before any message that depends on it. */
const HARD_STATE_FILE = "consensus.json";
/** Present while a recovering node waits for the recovery members' shares. */
const RECOVERY_FILE = "recovery.json";
/** How long a backup may take to receive and install a snapshot before the primary tries again. */

function readHardState(path: string): HardState | undefined {
  if (!existsSync(path)) return undefined;
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileSync(path, "utf8"));
  } catch (e) {
    throw new NodeError(`${path} is not valid JSON: ${(e as Error).message}`);
  }
  const hard = parsed as HardState;
  if (
    typeof parsed !== "object" ||
    parsed === null ||
    !Number.isSafeInteger(hard.view) ||
    hard.view < 0 ||
    !(hard.votedFor === null || typeof hard.votedFor === "string")
  ) {
    throw new NodeError(`${path} does not hold a consensus state {view, votedFor}`);
  }
  return { view: hard.view, votedFor: hard.votedFor };
}

/**
 * One running node: its identity, ledger files, transaction engine, signature timer and
 * snapshots. The HTTPS layer (src/rpc) sits on top of it.
 */
export class CocoNode {
  private signatureTimer: NodeJS.Timeout | undefined;
  private snapshots!: Snapshots;
  private snapshotTransfer!: SnapshotTransfer;
  private jsEngine!: JsEngine;
  /** Judges joiners' attestations; only in-process code (tests) can swap it for one with other roots. */
  joinVerifier = new JoinVerifier();
  /** In-process only (tests): stand-ins for this node's attestation (a fake configfs-tsm). */
  attestationSeams: ProviderSeams = {};
  readonly recoveryShares: RecoveryShares;
  /** Set while this node recovers a lost service and waits for the recovery members' shares. */
  private recovery: RecoveryCoordinator | undefined;
  private nodeRequestHandler: ((from: string, message: unknown) => Promise<unknown>) | undefined;
  private closing = false;
  private tickTimer: NodeJS.Timeout | undefined;
  private channels: NodeChannels | undefined;
  private readonly certificateListeners: Array<
    (certs: { nodeCertPem: string; serviceCertPem: string }) => void
  > = [];
  /** Certificates from the store that failed the checks: logged once, checked again `until`. */
  private refusedCertificates = { certs: "", until: 0 };
  private peersVersion = -1;
  private ticksSincePeerRefresh = 0;
  private commitToSave = 0;
  private commitSaved = 0;
  /** The commit hint being written, if any (one write at a time: they share a temporary file). */
  private commitHintWrite: Promise<void> | undefined;
  /** Linearizable reads waiting for the primary to confirm it still leads (read index). */
  private readonly pendingReads = new Map<
    string,
    { resolve: (seqno: number) => void; reject: (e: Error) => void }
  >();
  private readCounter = 0;
  /** Nodes named in the join answer; used until the replicated `nodes.info` lists them. */
  private joinPeers: JoinResponse["peers"] = [];
  private replica: Replica | undefined;
  /** Entries made before consensus starts (a new service's genesis). */
  private bootstrapEntries: Entry[] = [];
  private resolvePrimary: () => void = () => {};
  /** Resolves once this node is primary (a single-node service elects itself at start). */
  readonly primaryElected = new Promise<void>((resolve) => {
    this.resolvePrimary = resolve;
  });
  /** A client waits for commit of a transaction that no signature covers yet. */
  private commitWanted = false;
  /** File work started on commit (chunk renames, snapshot files); close() waits for it. */
  private readonly background = new Set<Promise<unknown>>();
  readonly startupSeqno: number;
  /** Seqno of the snapshot this start restored from; 0 if it replayed the whole ledger. */
  startupSnapshotSeqno = 0;

  private constructor(
    readonly config: NodeConfig,
    readonly env: Environment,
    readonly log: Logger,
    readonly identity: NodeIdentity,
    readonly state: LedgerState,
    private readonly files: LedgerFiles,
  ) {
    this.startupSeqno = state.lastSeqno;
    this.recoveryShares = new RecoveryShares({
      log,
      isPrimary: () => this.isPrimary,
      begin: () => this.state.store.begin(),
      commit: (tx) => this.commit(tx),
      ledgerSecret: () => this.state.secrets.current,
      randomBytes: (n) => this.env.randomBytes(n),
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
    mkdirSync(config.dir, { recursive: true, mode: 0o700 });
    const ledgerDir = join(config.dir, "ledger");
    const newIdentity = !hasIdentity(config.dir);
    if (newIdentity && !config.recover && readdirSafe(ledgerDir).length > 0) {
      throw new NodeError(
        `${ledgerDir} holds a ledger but ${config.dir} has no node identity to read it with`,
      );
    }
    const recovering = config.recover !== null && newIdentity;
    if (config.recover && !newIdentity && existsSync(join(config.dir, RECOVERY_FILE))) {
      throw new NodeError(
        "this node stopped while recovering, before the recovery members restored the ledger secret; start the recovery again from a fresh copy of the surviving ledger",
      );
    }
    let identity: NodeIdentity;
    let joinPeers: JoinResponse["peers"] = [];
    if (!newIdentity) identity = loadIdentity(config.dir, env);
    else if (config.join)
      ({ identity, peers: joinPeers } = await joinService(config, log, seams.attestationSeams));
    else identity = await createIdentity(env, config.rpc.host);

    // The first node of an SNP service attests itself before it opens or writes anything.
    const ownSnp =
      newIdentity && !config.join && !config.recover
        ? await ownSnpAttestation(config, identity.nodeCertPem, seams.attestationSeams)
        : undefined;
    const opened = await LedgerFiles.open(ledgerDir, { chunkSize: config.ledger.chunkSize });
    let recoveredFrom: { previousServiceCertPem: string; lastSeqno: number } | undefined;
    if (recovering) {
      recoveredFrom = await prepareRecovery(config, opened, identity);
      writeFileAtomic(
        join(config.dir, RECOVERY_FILE),
        JSON.stringify({
          last_seqno: recoveredFrom.lastSeqno,
          previous_service_cert: recoveredFrom.previousServiceCertPem,
        }),
      );
    }
    if (newIdentity) saveIdentity(config.dir, env, identity);
    writeFileAtomic(config.serviceCertFile, identity.serviceCertPem, 0o644);

    const secrets = new LedgerSecrets(
      identity.ledgerSecrets.map((s) => ({
        version: s.version,
        key: new Uint8Array(Buffer.from(s.key, "base64")),
      })),
    );
    const ledgerStart = opened.ledger.firstSeqno;
    if (opened.truncatedBytes > 0) {
      log.warn({ bytes: opened.truncatedBytes }, "truncated a torn write at the end of the ledger");
    }
    const files = opened.ledger;
    // Entries after the last signature stay: they may have been acknowledged to a primary, and
    // their commit evidence (checked on restore) shows they came from a node holding the secret.
    const entries = recoveredFrom
      ? opened.entries.filter((e) => e.seqno <= recoveredFrom.lastSeqno)
      : opened.entries;
    const commitHint = Math.max(readCommitHint(join(config.dir, COMMIT_FILE)), files.committedSeqno);
    const keys = {
      nodeId: identity.nodeId,
      nodeCertPem: identity.nodeCertPem,
      nodePrivateKey: p384PrivateKey(identity.nodePrivateKeyPem),
      servicePrivateKey: p384PrivateKey(identity.servicePrivateKeyPem),
      serviceKid: serviceKid(identity.serviceCertPem),
    };
    // Until consensus runs (genesis only), entries go straight to the files; then through Raft.
    let node: CocoNode | undefined;
    const sink: LedgerSink = {
      append: (seqno, frame, isSignature, config) => {
        if (node?.replica) return node.replica.append(seqno, frame, isSignature, config);
        files.append(seqno, frame, isSignature);
        node?.bootstrapEntries.push({
          seqno,
          view: 0,
          isSignature,
          data: frame,
          ...(config ? { config } : {}),
        });
        return true;
      },
    };
    const snapshotDir = join(config.dir, "snapshots");
    const snapshot = recoveredFrom
      ? undefined
      : await loadUsableSnapshot(snapshotDir, entries, ledgerStart, secrets, log);
    const state = recoveredFrom
      ? LedgerState.restorePublic({
          env,
          keys,
          secrets,
          sink,
          entries,
          previousServiceCertPem: recoveredFrom.previousServiceCertPem,
        })
      : LedgerState.restore({
          env,
          keys,
          secrets,
          sink,
          entries,
          snapshot,
          ledgerStart,
          serviceCertPem: identity.serviceCertPem,
          commitSeqno: commitHint,
        });
    node = new CocoNode(config, env, log, identity, state, files);
    node.attestationSeams = seams.attestationSeams ?? {};
    node.jsEngine = await createJsEngine({
      env,
      logger: (level, message) => log[level]({ script: true }, message),
    });
    node.joinPeers = joinPeers;
    node.startupSnapshotSeqno = snapshot?.snapshot.version ?? 0;
    node.snapshots = new Snapshots(
      snapshotDir,
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
      installedAt: (seqno) => {
        node.commitToSave = seqno;
      },
    });
    node.channels = await NodeChannels.listen({
      nodeId: identity.nodeId,
      certPem: identity.nodeCertPem,
      privateKeyPem: identity.nodePrivateKeyPem,
      serviceCertPem: identity.serviceCertPem,
      listen: config.nodeAddress,
      log,
    });
    const fresh = entries.length === 0 && !config.join;
    if (recoveredFrom) {
      log.warn(
        { seqno: recoveredFrom.lastSeqno, view: state.view },
        "recovering a service from its ledger: public state replayed; private state waits for the recovery members' shares",
      );
    } else if (fresh) {
      node.createService(ownSnp);
      await files.whenDurable(state.lastSeqno);
    } else if (entries.length === 0) {
      log.info("waiting for the primary to replicate the ledger");
    } else {
      log.info(
        { seqno: state.lastSeqno, view: state.view, snapshot: snapshot?.snapshot.version ?? null },
        "restarted from the ledger",
      );
    }
    if (
      node.startConsensus(
        fresh,
        entries,
        snapshot?.snapshot.version ?? 0,
        state.commitSeqno,
        recoveredFrom?.lastSeqno,
      )
    ) {
      await node.primaryElected;
      if (recoveredFrom) {
        const endorsement = await endorsePreviousService({
          service: { certPem: identity.serviceCertPem, privateKeyPem: identity.servicePrivateKeyPem },
          previousCertPem: recoveredFrom.previousServiceCertPem,
          now: new Date(env.now()),
          serial: env.randomBytes(16),
        });
        node.beginRecoveredService(recoveredFrom.previousServiceCertPem, endorsement);
        node.recovery = node.startRecovery(entries);
      }
      node.openWhenReady();
    }
    node.signatureTimer = setInterval(
      () => node.signIfDue(),
      signatureCheckMs(config.signatures.maxIntervalMs),
    );
    node.signatureTimer.unref();
    return node;
  }

  /**
   * Hands the ledger to consensus. A new service's log starts with its genesis entry, which
   * carries the first configuration (this node alone); a restarted node's log starts at its
   * last signed entry, with the nodes trusted there.
   */
  private startConsensus(
    fresh: boolean,
    restored: DecodedEntry[],
    snapshotSeqno: number,
    committedSeqno: number,
    recoveredAt?: number,
  ): boolean {
    const hardStatePath = join(this.config.dir, HARD_STATE_FILE);
    // A recovering node continues the old ledger alone: its log starts at the old commit point.
    const log: PersistedLog =
      recoveredAt !== undefined
        ? {
            start: { seqno: recoveredAt, view: this.state.viewOf(recoveredAt), config: [this.nodeId] },
            entries: [],
          }
        : fresh
          ? { start: { seqno: 0, view: 0, config: [] }, entries: this.bootstrapEntries }
          : {
              start: {
                seqno: snapshotSeqno,
                view: snapshotSeqno === 0 ? 0 : this.state.viewOf(snapshotSeqno),
                config: this.state.startConfig,
              },
              entries: restored
                .filter((e) => e.seqno > snapshotSeqno)
                .map((e) => {
                  const config = this.state.configAfter(e.seqno);
                  return {
                    seqno: e.seqno,
                    view: e.view,
                    isSignature: e.type === EntryType.Signature,
                    data: e.frame,
                    ...(config ? { config } : {}),
                  };
                }),
            };
    this.bootstrapEntries = [];
    const raft = new Raft({
      id: this.nodeId,
      random: () => new DataView(this.env.randomBytes(4).buffer).getUint32(0) / 2 ** 32,
      log,
      hardState: readHardState(hardStatePath),
      ...(recoveredAt === undefined && committedSeqno > snapshotSeqno ? { commitSeqno: committedSeqno } : {}),
      electionTicksMin: this.config.consensus.electionTicksMin,
      electionTicksMax: this.config.consensus.electionTicksMax,
    });
    this.replica = new Replica(
      raft,
      this.state,
      this.files,
      {
        send: (to, message) => this.channels?.send(to, message),
        saveHardState: (hard) => writeFileAtomic(hardStatePath, JSON.stringify(hard)),
        roleChanged: (change) => this.roleChanged(change),
        committed: (seqno) => this.committed(seqno),
        readReady: (requestId, seqno) => this.readReady(requestId, seqno),
        applied: (entry) => this.snapshots.afterReplicated(entry),
        rolledBack: (seqno) => this.snapshots.rolledBack(seqno),
        sendSnapshot: (to, seqno) => this.snapshotTransfer.send(to, seqno),
      },
      this.log,
      eventLoopScheduler,
    );
    this.channels?.onMessage((from, message) => this.replica?.step(from, message));
    this.channels?.onRequest((from, message) => this.serveNodeRequest(from, message));
    this.files.onDurable(() => this.signForWaiters());
    this.files.setBeforeBatch(() => this.signForWaiters());
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
    this.saveCommitHint();
    this.adoptRenewedCertificates();
    // Also every second: a retiring node stays a peer until consensus stops tracking it.
    if (this.state.nodesInfoVersion !== this.peersVersion || ++this.ticksSincePeerRefresh >= 10)
      this.refreshPeers();
    if (this.isPrimary) this.openWhenReady();
  }

  /**
   * Remembers the commit point across restarts, at most once a tick. Any value written was a real
   * commit point, so a stale file only makes a restarted node more cautious, never wrong; hence
   * the write runs in the background (synchronously, its two fsyncs held the event loop for
   * milliseconds every tick) and a failed one is only logged.
   */
  private saveCommitHint(): void {
    if (this.commitHintWrite || this.commitToSave <= this.commitSaved) return;
    const seqno = this.commitToSave;
    this.commitHintWrite = writeFileAtomicAsync(
      join(this.config.dir, COMMIT_FILE),
      JSON.stringify({ commit_seqno: seqno }),
    )
      .then(
        () => {
          this.commitSaved = Math.max(this.commitSaved, seqno);
        },
        (e) => this.log.warn({ err: e }, "could not save the commit point hint"),
      )
      .finally(() => {
        this.commitHintWrite = undefined;
      });
  }

  /** Waits for a hint being written, then writes the latest commit point if it is newer. */
  private async flushCommitHint(): Promise<void> {
    await this.commitHintWrite;
    this.saveCommitHint();
    await this.commitHintWrite;
  }

  /** Called with the node's certificates after governance renewed either of them. */
  onCertificatesRenewed(listener: (certs: { nodeCertPem: string; serviceCertPem: string }) => void): void {
    this.certificateListeners.push(listener);
  }

  /**
   * Governance renews certificates by writing them to the KV (`set_node_certificate_validity`,
   * `set_service_certificate_validity`, `transition_node_to_trusted`): same keys, new validity.
   * The node then serves them: RPC and node-to-node TLS, signatures (which carry the node
   * certificate), its sealed identity, and the service certificate file clients pin.
   */
  private adoptRenewedCertificates(): void {
    const endorsed = this.state.store.read(Tables.nodesEndorsedCertificates, utf8(this.nodeId));
    const nodeCertPem = endorsed ? new TextDecoder().decode(endorsed) : this.identity.nodeCertPem;
    const serviceCertPem = this.serviceInfoOrNull()?.cert ?? this.identity.serviceCertPem;
    if (nodeCertPem === this.identity.nodeCertPem && serviceCertPem === this.identity.serviceCertPem) return;
    const found = nodeCertPem + serviceCertPem;
    const now = this.env.now();
    if (this.refusedCertificates.certs === found && now < this.refusedCertificates.until) return;
    const problem = renewalProblem(this.identity, nodeCertPem, serviceCertPem, new Date(now));
    if (problem) {
      if (this.refusedCertificates.certs !== found) {
        this.log.warn({ reason: problem.reason }, "not serving the renewed certificates in the store");
      }
      // A certificate that is not valid yet is served once it is: look again in a second.
      this.refusedCertificates = {
        certs: found,
        until: problem.permanent ? Number.POSITIVE_INFINITY : now + 1000,
      };
      return;
    }
    const serviceRenewed = serviceCertPem !== this.identity.serviceCertPem;
    this.identity.nodeCertPem = nodeCertPem;
    this.identity.serviceCertPem = serviceCertPem;
    saveIdentity(this.config.dir, this.env, this.identity);
    if (serviceRenewed) {
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
    const validTo = (pem: string) => new X509Certificate(pem).validTo;
    this.log.info(
      { nodeCertValidTo: validTo(nodeCertPem), serviceCertValidTo: validTo(serviceCertPem) },
      "serving renewed certificates",
    );
  }

  /** Keeps a channel to every node `nodes.info` lists as pending or trusted. */
  private refreshPeers(): void {
    this.peersVersion = this.state.nodesInfoVersion;
    this.ticksSincePeerRefresh = 0;
    if (!this.channels) return;
    const wanted = new Set<string>();
    const known = this.nodes();
    // A node being retired stays reachable while consensus still counts it or replicates to it,
    // so it learns that its removal committed (and a retiring primary can hand over).
    const status = this.replica?.raft.status();
    const tracked = new Set([
      ...(status?.configs.flatMap((c) => c.nodes) ?? []),
      ...Object.keys(status?.peers ?? {}),
    ]);
    for (const [id, info] of known) {
      if (id === this.nodeId || !info.node_address) continue;
      if (info.status === "Retired" && !tracked.has(id)) continue;
      wanted.add(id);
      this.channels.setPeer(id, info.node_address);
    }
    if (known.length === 0) {
      for (const peer of this.joinPeers) {
        wanted.add(peer.node_id);
        this.channels.setPeer(peer.node_id, peer.node_address);
      }
    }
    for (const id of Object.keys(this.channels.stats())) if (!wanted.has(id)) this.channels.removePeer(id);
  }

  /**
   * A linearizable read without a write: the primary confirms with a quorum that it still leads
   * (read index) and returns the commit point a read must reflect. Rejects with NotPrimaryError
   * on a node that is not, or stops being, the primary.
   */
  linearizableReadPoint(): Promise<number> {
    if (!this.replica || !this.isPrimary)
      return Promise.reject(new NotPrimaryError("this node is not the primary"));
    const id = `read-${++this.readCounter}`;
    const point = new Promise<number>((resolve, reject) => this.pendingReads.set(id, { resolve, reject }));
    this.replica.raft.readIndex(id);
    this.replica.process();
    return point;
  }

  private readReady(requestId: string, seqno: number | null): void {
    const pending = this.pendingReads.get(requestId);
    if (!pending) return;
    this.pendingReads.delete(requestId);
    if (seqno === null) pending.reject(new NotPrimaryError("this node stopped being the primary"));
    else pending.resolve(seqno);
  }

  /** Sends a request to another node of the service over the node-to-node channel. */
  requestNode(to: string, message: unknown, timeoutMs: number): Promise<unknown> {
    if (!this.channels) return Promise.reject(new NodeError("no node-to-node channels"));
    return this.channels.request(to, message, timeoutMs);
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
    const nodeId = joinerNodeId(request);
    return this.nodes().some(([id]) => id === nodeId);
  }

  /**
   * Admits a joining node (primary only): checks its attestation against the allowed
   * measurements, issues its certificate, records it, and, while the service is opening,
   * trusts it at once and hands it the service's secrets wrapped to its encryption key.
   */
  async admit(request: JoinRequest): Promise<JoinResponse> {
    checkJoinProof(request);
    const attestation = this.joinVerifier.check(request, this.joinPolicy(), {
      now: this.env.now(),
      platform: this.config.attestation.platform,
    });
    const nodeId = joinerNodeId(request);
    const known = this.nodes().find(([id]) => id === nodeId)?.[1];
    let certPem = known?.cert;
    if (!known) {
      certPem = await issueNodeCertificate({
        service: { certPem: this.identity.serviceCertPem, privateKeyPem: this.identity.servicePrivateKeyPem },
        nodePublicKeyPem: request.node_public_key,
        altNames: hostAltNames(request.rpc_address.slice(0, request.rpc_address.lastIndexOf(":"))),
        now: new Date(this.env.now()),
        serial: this.env.randomBytes(16),
      });
      const status = this.serviceInfo().status === "Opening" ? "Trusted" : "Pending";
      const tx = this.state.store.begin();
      const info: NodeInfo = {
        status,
        cert: certPem,
        rpc_address: request.rpc_address,
        node_address: request.node_address,
        ...(request.certificate_signing_request
          ? { certificate_signing_request: request.certificate_signing_request }
          : {}),
      };
      tx.map(Tables.nodesInfo).set(utf8(nodeId), jsonBytes(info));
      tx.map(Tables.nodesEndorsedCertificates).set(utf8(nodeId), utf8(certPem));
      tx.map(NODE_ATTESTATIONS).set(utf8(nodeId), jsonBytes(attestation));
      this.mustCommit(tx);
      this.log.info(
        {
          nodeId,
          status,
          rpc: request.rpc_address,
          platform: attestation.format,
          measurement: attestation.measurement,
        },
        "a node joined",
      );
    }
    const status =
      known?.status === "Trusted" || (!known && this.serviceInfo().status === "Opening")
        ? "Trusted"
        : "Pending";
    const response: JoinResponse = {
      node_id: nodeId,
      status,
      node_certificate: certPem!,
      service_certificate: this.identity.serviceCertPem,
      peers: this.nodes()
        .filter(([id, info]) => id !== nodeId && info.status !== "Retired" && info.node_address)
        .map(([id, info]) => ({ node_id: id, node_address: info.node_address! })),
    };
    if (status === "Trusted") {
      response.wrapped_secrets = wrapSecrets(
        {
          service_private_key: this.identity.servicePrivateKeyPem,
          ledger_secrets: this.identity.ledgerSecrets,
        },
        request.encryption_public_key,
        (n) => this.env.randomBytes(n),
      );
    }
    return response;
  }

  /** The join policy as governance holds it now: a vote takes effect for the next join. */
  private joinPolicy() {
    return readJoinPolicy((map) => this.state.readSmallMap(map));
  }

  private roleChanged(change: RoleChange): void {
    this.log.info({ role: change.role, view: change.view, primary: change.leader }, "consensus role changed");
    if (change.role !== "primary") return;
    this.state.enterView(change.view);
    // A new primary commits in its own view only: sign at once, covering everything inherited.
    if (this.state.lastSeqno > 0) this.sign();
    this.resolvePrimary();
  }

  /** This node as the first (or recovering) node of a service records itself. */
  private selfNodeInfo(): NodeInfo {
    return {
      status: "Trusted",
      cert: this.identity.nodeCertPem,
      rpc_address: `${this.config.rpc.host}:${this.config.rpc.port}`,
      node_address: `${this.config.nodeAddress.host}:${this.channels?.port ?? this.config.nodeAddress.port}`,
      ...(this.identity.nodeCsrPem ? { certificate_signing_request: this.identity.nodeCsrPem } : {}),
    };
  }

  /** Genesis (seqno 1): the service, this node, and the initial members and users. */
  private createService(ownSnp?: Extract<AttestationView, { format: "snp" }>): void {
    const tx = this.state.store.begin();
    const info: ServiceInfo = { cert: this.identity.serviceCertPem, status: "Opening" };
    tx.map(Tables.serviceInfo).set(SINGLETON_KEY, jsonBytes(info));
    tx.map(Tables.nodesInfo).set(utf8(this.nodeId), jsonBytes(this.selfNodeInfo()));
    // The join policy starts with the code this node runs; members change it by vote.
    tx.map(Tables.nodesVirtualMeasurements).set(utf8(codeMeasurement()), jsonBytes("AllowedToJoin"));
    // On SEV-SNP the first node's own report seeds the SNP join policy, as in CCF: nodes running
    // the same launch measurement, with the same host data, on at least this TCB may join.
    if (ownSnp) {
      tx.map(NODE_ATTESTATIONS).set(utf8(this.nodeId), jsonBytes(ownSnp));
      tx.map(GovTables.nodesSnpMeasurements).set(utf8(ownSnp.measurement), jsonBytes("AllowedToJoin"));
      tx.map(GovTables.nodesSnpHostData).set(utf8(ownSnp.host_data), jsonBytes(""));
      if (ownSnp.cpuid) {
        const tcb = parseSnpReport(Buffer.from(ownSnp.report, "base64")).reportedTcb;
        tx.map(GovTables.nodesSnpTcbVersions).set(
          utf8(ownSnp.cpuid),
          jsonBytes({
            boot_loader: tcb.bootloader,
            tee: tcb.tee,
            snp: tcb.snp,
            microcode: tcb.microcode,
            ...(tcb.fmc !== undefined ? { fmc: tcb.fmc } : {}),
          }),
        );
      }
    }
    tx.map(Tables.nodesEndorsedCertificates).set(utf8(this.nodeId), utf8(this.identity.nodeCertPem));
    tx.map(GovTables.constitution).set(GOV_SINGLETON, utf8(this.genesisConstitution()));
    tx.map(GovTables.serviceConfig).set(GOV_SINGLETON, jsonBytes({ recovery_threshold: 1 }));
    for (const member of this.config.members) {
      const pem = readCertFile(member.cert);
      tx.map(Tables.membersCerts).set(utf8(certFingerprint(pem)), utf8(pem));
      tx.map(Tables.membersInfo).set(utf8(certFingerprint(pem)), jsonBytes({ status: "Accepted" }));
      if (member.encryptionPublicKey) {
        tx.map(GovTables.membersEncryptionKeys).set(
          utf8(certFingerprint(pem)),
          utf8(readEncryptionKey(member.encryptionPublicKey)),
        );
      }
    }
    for (const user of this.config.users) {
      const pem = readCertFile(user.cert);
      tx.map(Tables.usersCerts).set(utf8(certFingerprint(pem)), utf8(pem));
    }
    this.mustCommit(tx);
    this.log.info({ nodeId: this.nodeId }, "created a new service");
  }

  /**
   * The first transaction of a recovered service: the new service identity (recording the
   * previous one), this node as the only trusted node, the lost nodes retired. The service is
   * `Recovering` until members vote it open and submit their recovery shares.
   */
  private beginRecoveredService(previousServiceCertPem: string, endorsement: string): void {
    const tx = this.state.store.begin();
    const previous = this.serviceInfoOrNull();
    const info = {
      cert: this.identity.serviceCertPem,
      status: "Recovering",
      previous_service_identity: previousServiceCertPem,
      previous_service_identity_endorsement: endorsement,
      recovery_count: ((previous as { recovery_count?: number } | null)?.recovery_count ?? 0) + 1,
    };
    tx.map(Tables.serviceInfo).set(SINGLETON_KEY, jsonBytes(info));
    for (const [id, node] of this.nodes()) {
      if (node.status !== "Retired")
        tx.map(Tables.nodesInfo).set(utf8(id), jsonBytes({ ...node, status: "Retired" }));
    }
    tx.map(Tables.nodesInfo).set(utf8(this.nodeId), jsonBytes(this.selfNodeInfo()));
    tx.map(Tables.nodesEndorsedCertificates).set(utf8(this.nodeId), utf8(this.identity.nodeCertPem));
    tx.map(Tables.nodesVirtualMeasurements).set(utf8(codeMeasurement()), jsonBytes("AllowedToJoin"));
    this.mustCommit(tx);
    this.sign();
    this.log.info(
      { previousServiceCert: previousServiceCertPem.slice(0, 64) },
      "started a recovered service",
    );
  }

  /** `POST /gov/recovery/members/{id}:recover`, while this node recovers a lost service. */
  acceptRecoveryShare(tx: Tx, memberId: string, payload: Uint8Array): { message: string } {
    if (!this.recovery) {
      throw new GovError(400, "ServiceNotWaitingForRecoveryShares", "this node is not recovering a service");
    }
    return this.recovery.acceptShare(tx, memberId, payload);
  }

  private startRecovery(entries: DecodedEntry[]): RecoveryCoordinator | undefined {
    return RecoveryCoordinator.start(
      {
        log: this.log,
        state: this.state,
        keepSecrets: (secrets) => {
          for (const secret of secrets) {
            if (this.identity.ledgerSecrets.some((s) => s.version === secret.version)) continue;
            this.identity.ledgerSecrets.push({
              version: secret.version,
              key: Buffer.from(secret.key).toString("base64"),
            });
          }
          this.identity.ledgerSecrets.sort((a, b) => a.version - b.version);
          saveIdentity(this.config.dir, this.env, this.identity);
        },
        commitAndSign: (tx) => {
          this.mustCommit(tx);
          this.sign();
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

  /** The constitution a new service starts with: the configured files, or Coco's default. */
  private genesisConstitution(): string {
    if (this.config.constitution.length === 0) return defaultConstitution();
    return joinConstitution(
      this.config.constitution.map((file) => {
        try {
          return readFileSync(file, "utf8");
        } catch (e) {
          throw new NodeError(`cannot read constitution file ${file}: ${(e as Error).message}`);
        }
      }),
    );
  }

  /** Signed governance requests, run as transactions on the primary (see src/rpc/gov.ts). */
  readonly governance = {
    write: <T>(
      bytes: Uint8Array,
      expect: Parameters<typeof governanceWrite>[2],
      work: Parameters<typeof governanceWrite<T>>[3],
    ) => governanceWrite<T>(this.govHost(), bytes, expect, work),
  };

  private govHost(): GovHost {
    return {
      log: this.log,
      isPrimary: this.isPrimary,
      begin: () => this.state.store.begin(),
      commit: (tx) => this.commit(tx),
      nowSeconds: () => Math.floor(this.env.now() / 1000),
      constitution: (effects) => this.constitution(effects),
      carryOut: (effects) => this.carryOut(effects),
      sharesInputs: SHARES_INPUTS,
    };
  }

  private constitution(effects: GovEffects): Constitution {
    return jsConstitution(this.jsEngine, (tx) =>
      serviceHooks(tx, effects, {
        service: { certPem: this.identity.serviceCertPem, privateKeyPem: this.identity.servicePrivateKeyPem },
        latestSecretVersion: () => this.state.secrets.current.version,
        now: () => this.env.now(),
        randomBytes: (n) => this.env.randomBytes(n),
      }),
    );
  }

  /** Carries out what an accepted proposal asked for, after it committed. */
  private carryOut(effects: GovEffects): void {
    if (effects.rekey) this.rekey();
    if (effects.snapshot) {
      this.snapshots.request();
      this.sign();
    }
    if (effects.refreshRecoveryShares && !effects.rekey) void this.recoveryShares.refresh();
    if (effects.ledgerChunk) {
      this.files.requestChunk();
      this.sign();
    }
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
    const bytes = this.state.store.read(Tables.serviceInfo, SINGLETON_KEY);
    if (!bytes) throw new NodeError("service info is missing from the store");
    return parseJsonBytes<ServiceInfo>(bytes);
  }

  private mustCommit(tx: Tx): void {
    const outcome = this.commit(tx);
    if (!outcome.ok) throw new NodeError("an internal transaction conflicted");
  }

  /** Commits an executed transaction and keeps the signature and snapshot cadence. */
  commit(tx: Tx, claimsDigest: Uint8Array = ZERO_DIGEST): CommitOutcome {
    if (this.closing) throw new NodeError("node is stopping");
    const outcome = this.state.commitTx(tx, claimsDigest);
    if (
      outcome.ok &&
      outcome.seqno !== null &&
      this.state.txSinceSignature >= this.config.signatures.maxTransactions
    ) {
      this.sign();
    }
    return outcome;
  }

  /**
   * Respond-on-commit asks for a signature soon instead of at the next interval: the next
   * group-commit batch ends with one, so the wait is about one fdatasync, and under load there
   * is one signature per batch rather than one per request.
   */
  wantCommit(): void {
    if (!this.closing && this.state.txSinceSignature > 0) this.commitWanted = true;
  }

  private signForWaiters(): void {
    if (!this.commitWanted) return;
    this.commitWanted = false;
    this.signIfPending();
  }

  /**
   * The interval bound: signs once the oldest unsigned transaction is about to be
   * `maxIntervalMs` old. Checking its age, rather than signing on every timer tick, leaves out
   * the timer's signatures under load, where clients waiting for commit already end every
   * batch with one (the timer's were a third of all signatures, each two P-384 signatures).
   */
  private signIfDue(): void {
    const since = this.state.unsignedSince;
    const { maxIntervalMs } = this.config.signatures;
    if (since !== undefined && this.env.now() - since >= maxIntervalMs - signatureCheckMs(maxIntervalMs))
      this.signIfPending();
  }

  signIfPending(): void {
    if (!this.closing && this.isPrimary && this.state.txSinceSignature > 0) this.sign();
  }

  private sign(): void {
    const seqno = this.state.emitSignature();
    this.snapshots.afterSignature(seqno);
  }

  /** Consensus moved the commit point: mark chunks committed, and write a pending snapshot. */
  private committed(commit: number): void {
    this.commitToSave = commit;
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

  /** Rotates the ledger secret (governance's `trigger_ledger_rekey` will call this). */
  rekey(): number {
    const key = this.env.randomBytes(32);
    const seqno = this.state.rekey(key, (version, newKey) => {
      this.identity.ledgerSecrets.push({ version, key: Buffer.from(newKey).toString("base64") });
      saveIdentity(this.config.dir, this.env, this.identity);
    });
    this.sign();
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
    this.signIfPending();
    this.closing = true;
    clearInterval(this.signatureTimer);
    clearInterval(this.tickTimer);
    await this.flushCommitHint();
    await this.files.whenDurable(this.state.lastSeqno);
    await Promise.all(this.background);
    await this.channels?.close();
    await this.files.close();
    this.state.abortWaiters("node stopped before the transaction committed");
    for (const id of [...this.pendingReads.keys()]) this.readReady(id, null);
  }
}

/**
 * Readies a copied ledger for recovery: keeps its signed prefix (an unsigned tail cannot be
 * trusted), and gives the new service a ledger secret whose version follows it.
 */
async function prepareRecovery(
  config: NodeConfig,
  opened: Awaited<ReturnType<typeof LedgerFiles.open>>,
  identity: NodeIdentity,
): Promise<{ previousServiceCertPem: string; lastSeqno: number }> {
  const previousServiceCertPem = readCertFile(config.recover!.previousServiceCertFile);
  const lastSignature = [...opened.entries].reverse().find((e) => e.type === EntryType.Signature);
  if (!lastSignature || opened.entries[0]?.seqno !== 1) {
    throw new NodeError(
      `${join(config.dir, "ledger")} must hold a copy of a surviving node's whole ledger (from seqno 1, with at least one signature)`,
    );
  }
  if (opened.ledger.lastSeqno > lastSignature.seqno) await opened.ledger.truncate(lastSignature.seqno);
  identity.ledgerSecrets = identity.ledgerSecrets.map((s) => ({ ...s, version: lastSignature.seqno + 1 }));
  return { previousServiceCertPem, lastSeqno: lastSignature.seqno };
}

/**
 * The first node of a service on SEV-SNP attests itself before creating the service: its report
 * seeds the join policy. A node that cannot attest cannot start an SNP service.
 */
async function ownSnpAttestation(
  config: NodeConfig,
  nodeCertPem: string,
  seams: ProviderSeams | undefined,
): Promise<Extract<AttestationView, { format: "snp" }> | undefined> {
  if (config.attestation.platform !== "snp") return undefined;
  try {
    const view = attestationView(
      await attestationProvider(config.attestation, seams ?? {}).attest(nodeCertPem),
    );
    return view.format === "snp" ? view : undefined;
  } catch (e) {
    throw new NodeError(
      `cannot attest this node, so it cannot start a service on SEV-SNP: ${(e as Error).message}`,
    );
  }
}

function readdirSafe(dir: string): string[] {
  try {
    return readdirSync(dir);
  } catch {
    return [];
  }
}

function readEncryptionKey(path: string): string {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
    const key = createPublicKey(text);
    if (key.asymmetricKeyType !== "rsa" || (key.asymmetricKeyDetails?.modulusLength ?? 0) < 2048) {
      throw new Error("it must be an RSA public key of at least 2048 bits");
    }
  } catch (e) {
    throw new NodeError(`${path} is not a usable member encryption key: ${(e as Error).message}`);
  }
  return text;
}

function readCertFile(path: string): string {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (e) {
    throw new NodeError(`cannot read certificate ${path}: ${(e as Error).message}`);
  }
  try {
    parseCertificate(text);
  } catch (e) {
    throw new NodeError(`${path} is not a usable certificate: ${(e as Error).message}`);
  }
  return normalizePem(text);
}
