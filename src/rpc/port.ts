import type { Logger } from "pino";
import type { GovernanceWrite } from "../gov/index.ts";
import type { Store, Tx } from "../kv/index.ts";
import type { CommitOutcome, ReceiptLookup, TxStatus } from "../ledger/index.ts";
import type { AttestationView } from "../tee/index.ts";

/**
 * What the HTTPS layer needs of a node, and nothing more. `src/node` implements it
 * (src/node/rpc-port.ts) and wires the server; rpc never imports a file of `src/node`, so the
 * node's internals can change without touching the endpoints.
 */
export interface RpcNode {
  readonly nodeId: string;
  readonly log: Logger;
  readonly settings: RpcSettings;

  /** The node's current state: authentication lookups, routing and read-only views. */
  readonly store: Store;
  /** The TxID of the store's current version: what an answer that wrote nothing names. */
  currentTxId(): string;
  txIdOf(seqno: number): string;
  /** The TxID of the last commit point. */
  commitTxId(): string;

  /** The node's clock (ms since the epoch), from its injected environment: JWT and COSE dates. */
  now?(): number;

  readonly isPrimary: boolean;
  /** The node this one believes is primary, or null. */
  readonly primaryId: string | null;
  /** Where clients reach a node of the service. */
  rpcAddressOf(nodeId: string): string | undefined;

  /** Commits an executed transaction (primary only; throws NotPrimaryError otherwise). */
  commit(tx: Tx, claimsDigest?: Uint8Array): CommitOutcome;
  /** Resolves once `seqno` is committed; rejects if it is rolled back or the node stops. */
  waitForCommit(seqno: number): Promise<void>;
  /** Confirms with a quorum that this node still leads; the commit point a read must reflect. */
  linearizableReadPoint(): Promise<number>;
  txStatus(view: number, seqno: number): TxStatus;
  /** At once from memory, or (a transaction whose proof left memory) later, from the ledger files. */
  receipt(view: number, seqno: number): ReceiptLookup | Promise<ReceiptLookup>;
  /** Ledger frames `from`..`to` as stored (read-only views: the console's ledger explorer). */
  ledgerFrames(from: number, to: number): Promise<Uint8Array[]>;

  /**
   * Sends a request to another node over the node-to-node channel. It rejects with an error whose
   * `code` says why (`timeout`, `disconnected`, `cancelled`: never sent, `abandoned`: sent, ...).
   */
  requestNode(
    to: string,
    message: unknown,
    timeoutMs: number,
    options?: NodeRequestOptions,
  ): Promise<unknown>;
  /** The node-to-node channel to each peer as this node sees it (for `/node/network/nodes`). */
  peerLinks?(): Record<string, PeerLink>;
  /**
   * Whether `nodeId` may hand this node client calls: a Trusted node, or a retiring one that
   * consensus still counts or replicates to (it serves its clients until its removal commits).
   */
  mayForward(nodeId: string): boolean;
  /** Serves requests other nodes send (forwarded client calls). */
  onNodeRequest(handler: (from: string, message: unknown) => Promise<unknown>): void;

  /** Operator views. */
  status(): NodeStatusView;
  nodes(): Array<[string, NodeRecord]>;
  serviceInfo(): ServiceRecord | null;
  consensus(): ConsensusView | undefined;
  readonly nodeCertPem: string;
  readonly serviceCertPem: string;

  /** This node's own attestation (made once), and what joins recorded for each node. */
  attestSelf(): Promise<AttestationView>;
  recordedAttestations(): Map<string, unknown>;

  /** `POST /node/join`: the node parses, checks and answers a join request. */
  join(body: unknown): Promise<JoinAnswer>;

  /** Signed governance requests, run as transactions on the primary. */
  readonly governance: GovernanceWrite;
  /** `POST /gov/recovery/members/{id}:recover`, while this node recovers a lost service. */
  acceptRecoveryShare(tx: Tx, memberId: string, payload: Uint8Array): { message: string };
  /** The recovery share held for a member, encrypted to its key, as committed (never a share set that may be rolled back). */
  encryptedShareOf(memberId: string): string | undefined;
}

/** Options of a node-to-node request (the channel's own, src/net). */
export interface NodeRequestOptions {
  /** Gives up: the request fails `cancelled` if still queued (never sent), else `abandoned`. */
  signal?: AbortSignal;
  /** Called at once with a function that gives up as `signal` does (without an AbortSignal's cost). */
  withCancel?: (cancel: () => void) => void;
  /** Called once the request is written to the connection: from then on the peer may run it. */
  onWritten?: () => void;
}

/** One peer's channel as this node sees it. */
export interface PeerLink {
  /** This node's connection to the peer is up. */
  connected: boolean;
  /** The peer's connection to this node is up. */
  inbound: boolean;
  /** When a frame last arrived from the peer (ms since the epoch), or null. */
  lastReceivedAt: number | null;
}

export interface RpcSettings {
  maxBodyBytes: number;
  /** How a backup handles writes: run them on the primary, or redirect the client there. */
  forwarding: "forward" | "redirect";
  forwardTimeoutMs: number;
  /** Client connections one address may hold; idle connections close after idleTimeoutMs. */
  maxConnectionsPerAddress: number;
  idleTimeoutMs: number;
  commitWaitTimeoutMs: number;
  platform: "virtual" | "snp";
  version: string;
}

export interface NodeRecord {
  status: string;
  rpc_address: string;
  node_address?: string;
}

export interface ServiceRecord {
  status: string;
  cert: string;
  previous_service_identity_endorsement?: string;
}

export interface NodeStatusView {
  retired: boolean;
  lastSignedSeqno: number;
  startupSeqno: number;
  view: number;
  /**
   * Why the certificates the ledger records for this node are not the ones it serves (not valid
   * yet, or never usable: `permanent`), or undefined when they are the same.
   */
  certificateProblem?: { reason: string; permanent: boolean } | undefined;
}

/** Consensus status as the node reports it (more fields than these are served as they are). */
export interface ConsensusView {
  readonly view: number;
  readonly role: string;
}

export type JoinAnswer =
  | { ok: true; body: unknown }
  | { ok: false; status: number; code: string; message: string; extra?: Record<string, unknown> };
