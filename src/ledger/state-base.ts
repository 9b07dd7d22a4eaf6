import type { KeyObject } from "node:crypto";
import { MerkleTree } from "../crypto/index.ts";
import { formatTxId, Store, type WriteSet } from "../kv/index.ts";
import { CommitWaits } from "./commit-waits.ts";
import { invariant, LedgerStateError } from "./errors.ts";
import { DEFAULT_RECEIPT_WINDOW, type LedgerArchive, type SignedRoot } from "./receipts.ts";
import type { LedgerSecrets } from "./secrets.ts";
import { SigningRules } from "./signers.ts";
import { fromUtf8, type NodeInfo, parseJsonBytes, type SignatureRecord, Tables } from "./tables.ts";
import { TxHistory, type TxMeta } from "./tx-history.ts";

/** Where the ledger state takes time and randomness from (a node's, or the simulator's). */
export interface LedgerEnvironment {
  /** Milliseconds since the Unix epoch. */
  now(): number;
  randomBytes(length: number): Uint8Array;
}

/** Where committed entries go: the shell writes them to disk (and, later, to other nodes). */
export interface LedgerSink {
  /**
   * Takes a new entry. `config` is set when the entry changes which nodes are trusted: the
   * complete new set of voting node ids. Returning false refuses it (this node is no longer
   * primary): the transaction is undone and `commitTx` throws NotPrimaryError.
   */
  append(seqno: number, frame: Uint8Array, isSignature: boolean, config?: string[]): boolean;
}

/** The keys this node signs with. */
export interface SigningKeys {
  nodeId: string;
  nodeCertPem: string;
  nodePrivateKey: KeyObject;
  servicePrivateKey: KeyObject;
  /** COSE `kid` of the service key. */
  serviceKid: Uint8Array;
}

/**
 * The ledger state's first layer: what it holds (store, Merkle tree, per-transaction metadata,
 * signatures, views, configurations) and the lookups on it. The layers above add the commit
 * point and receipts (state-receipts.ts), snapshots (state-snapshots.ts), restarts
 * (state-restore.ts) and the write and apply paths (state.ts, `LedgerState`), as consensus does
 * with Raft's layers.
 */
export class LedgerStateBase {
  protected _store: Store;
  protected tree = new MerkleTree();
  /** Metadata of the entries after `metaStart` (a node that started from a snapshot has none before). */
  protected meta = new TxHistory();
  protected metaStart = 0;
  /** `[view, first seqno]` of every view with entries, oldest first. */
  protected viewStarts: Array<[number, number]> = [];
  protected readonly signatures = new Map<number, SignedRoot>();
  protected readonly signatureSeqnos: number[] = [];
  /** Who may sign here: the nodes, certificates and view signers the ledger records so far. */
  protected signers = new SigningRules();
  /** The newest signature entry as framed: the anchor of a snapshot taken there. */
  protected lastSignatureFrame: { seqno: number; frame: Uint8Array } | undefined;
  protected readonly commitWaits = new CommitWaits();
  protected _view: number;
  protected _commitSeqno = 0;
  protected _txSinceSignature = 0;
  /** When (env clock) the oldest transaction no signature covers yet was added; undefined if none. */
  private _unsignedSince: number | undefined;
  /** The voting configuration after each entry that changed `nodes.info` (for consensus). */
  protected readonly configs = new Map<number, string[]>();
  /** The configuration where the restored log starts (at the snapshot, or none at seqno 0). */
  startConfig: string[] = [];
  /** One copy of each node certificate and id that signatures carry (see recordSignature). */
  private readonly interned = new Map<string, string>();
  /** Bumped whenever `nodes.info` changes, so the node knows to refresh its peers. */
  nodesInfoVersion = 0;
  protected _receiptWindow = DEFAULT_RECEIPT_WINDOW;
  /** The node's ledger files, read back for receipts whose proofs left memory. */
  archive: LedgerArchive | undefined;
  /** Transactions up to this seqno have their proofs only in the ledger files. */
  protected archivedTo = 0;

  constructor(
    protected readonly env: LedgerEnvironment,
    protected readonly keys: SigningKeys,
    readonly secrets: LedgerSecrets,
    protected readonly sink: LedgerSink,
    view: number,
    store?: Store,
  ) {
    this._view = view;
    this._store = store ?? new Store();
  }

  get store(): Store {
    return this._store;
  }

  get view(): number {
    return this._view;
  }
  get commitSeqno(): number {
    return this._commitSeqno;
  }
  get lastSeqno(): number {
    return this.metaStart + this.meta.length;
  }
  /** The seqno of the snapshot this node's history starts from (0: it holds the whole ledger). */
  get historyStart(): number {
    return this.metaStart === 0 ? 0 : this.metaStart + 1;
  }
  get txSinceSignature(): number {
    return this._txSinceSignature;
  }
  get unsignedSince(): number | undefined {
    return this._unsignedSince;
  }

  /** Every change to the count of unsigned transactions goes through here, to keep their age. */
  protected setTxSinceSignature(count: number): void {
    if (count === 0) this._unsignedSince = undefined;
    else if (this._unsignedSince === undefined) this._unsignedSince = this.env.now();
    this._txSinceSignature = count;
  }
  get lastSignatureSeqno(): number {
    return this.signatureSeqnos.at(-1) ?? 0;
  }

  viewOf(seqno: number): number {
    if (seqno === 0) return this._view;
    if (seqno >= 1 && seqno <= this.lastSeqno) {
      const view = this.meta.viewAt(seqno - this.metaStart - 1);
      if (view !== undefined) return view;
      // Before the snapshot this node started from: the view history knows.
      for (let i = this.viewStarts.length - 1; i >= 0; i--) {
        const [view, first] = this.viewStarts[i]!;
        if (first <= seqno) return view;
      }
    }
    throw new LedgerStateError(`no transaction at seqno ${seqno}`);
  }

  protected metaAt(seqno: number): TxMeta | undefined {
    return seqno > this.metaStart ? this.meta.at(seqno - this.metaStart - 1) : undefined;
  }

  protected noteView(seqno: number, view: number): void {
    const last = this.viewStarts.at(-1);
    if (!last || last[0] !== view) this.viewStarts.push([view, seqno]);
  }

  txIdOf(seqno: number): string {
    return formatTxId({ view: this.viewOf(seqno), seqno });
  }

  /** Records the configuration after an entry that wrote `nodes.info`; returns it (or undefined). */
  protected noteConfig(seqno: number, writeSet: WriteSet): string[] | undefined {
    if (!writeSet.some((m) => m.name === Tables.nodesInfo)) return undefined;
    const config = this.trustedNodes();
    this.configs.set(seqno, config);
    this.nodesInfoVersion++;
    return config;
  }

  /** The configuration an entry set, if it changed `nodes.info` (entries this node applied). */
  configAfter(seqno: number): string[] | undefined {
    return this.configs.get(seqno);
  }

  /** Ids of the nodes `public:ccf.gov.nodes.info` says are trusted: the voting configuration. */
  trustedNodes(): string[] {
    return this.nodes()
      .filter(([, info]) => info.status === "Trusted")
      .map(([id]) => id)
      .sort();
  }

  /** Every node in `public:ccf.gov.nodes.info`, as of the current state. */
  nodes(): Array<[string, NodeInfo]> {
    return this.readSmallMap(Tables.nodesInfo).map(([id, value]) => [id, parseJsonBytes<NodeInfo>(value)]);
  }

  /** Governance renewed this node's certificate (same key): signatures from now on carry it. */
  renewNodeCertificate(certPem: string): void {
    this.keys.nodeCertPem = certPem;
  }

  /** All of a framework map with string keys (node and policy tables: small by nature). */
  readSmallMap(name: string): Array<[string, Uint8Array]> {
    return readSmallMapOf(this.store, name);
  }

  protected recordSignature(seqno: number, record: SignatureRecord, cose: Uint8Array): void {
    this.signers.noteSignature(seqno, record.view, record.node);
    // Kept for receipts, one per signature: the certificate and node id are the same few strings
    // each time (a backup parses a new copy from every entry), and the COSE bytes may be a view
    // of the whole entry.
    record.cert = this.intern(record.cert);
    record.node = this.intern(record.node);
    this.signatures.set(seqno, { record, cose: Uint8Array.from(cose) });
    this.signatureSeqnos.push(seqno);
  }

  private intern(text: string): string {
    const known = this.interned.get(text);
    if (known !== undefined) return known;
    if (this.interned.size >= 1024) this.interned.clear();
    this.interned.set(text, text);
    return text;
  }

  /**
   * The store, the Merkle tree and the entries' metadata end at the same seqno: a receipt proves
   * leaf `seqno - 1` of the tree and the store's version is the seqno, so if they drifted apart
   * receipts and signatures would cover other transactions than the ledger holds.
   */
  protected checkEnds(): void {
    const last = this.lastSeqno;
    invariant(
      this.tree.size === last && this.store.version === last,
      () =>
        `the ledger ends at ${last}, its Merkle tree at ${this.tree.size}, its store at ${this.store.version}`,
    );
  }

  /** A new view begins (this node became primary, or restarted): new entries carry it. */
  enterView(view: number): void {
    if (view < this._view) throw new LedgerStateError(`view cannot go back from ${this._view} to ${view}`);
    this._view = view;
  }
}

function readSmallMapOf(store: Store, name: string): Array<[string, Uint8Array]> {
  const tx = store.begin();
  const { entries } = tx.map(name).range({ limit: 10_000 });
  tx.abandon();
  return entries.map(([key, value]) => [fromUtf8(key), value]);
}
