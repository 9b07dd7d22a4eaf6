import type { KeyObject } from "node:crypto";
import {
  aesGcmEncrypt,
  coseVerifySign1,
  equalBytes,
  MerkleTree,
  signP384,
  signRootCose,
  toHex,
} from "../crypto/index.ts";
import { formatTxId, Store, type Tx, type WriteSet } from "../kv/index.ts";
import { CommitWaits } from "./commit-waits.ts";
import { type DecodedEntry, decryptEntry, EntryType, encodeEntry, frameWriteSetDigest } from "./entry.ts";
import { invariant, LedgerStateError } from "./errors.ts";
import { commitEvidence, commitEvidenceDigest, leafOf } from "./evidence.ts";
import {
  type CommitOutcome,
  NotPrimaryError,
  type ReceiptInMemory,
  type ReceiptLookup,
  type TxStatus,
  ZERO_DIGEST,
} from "./outcomes.ts";
import {
  archiveReadFrom,
  buildReceipt,
  DEFAULT_RECEIPT_WINDOW,
  firstAfter,
  type LedgerArchive,
  readThroughSignature,
  receiptFromEntries,
} from "./receipts.ts";
import type { LedgerSecrets } from "./secrets.ts";
import { checkSnapshot, type DecodedSnapshot } from "./snapshot-adopt.ts";
import { encodeSnapshotFrom, type SnapshotSource } from "./snapshot-encoder.ts";
import {
  fromUtf8,
  jsonBytes,
  type NodeInfo,
  parseJsonBytes,
  SINGLETON_KEY,
  type SignatureRecord,
  Tables,
} from "./tables.ts";

/** Where the ledger state takes time and randomness from (a node's, or the simulator's). */
export interface LedgerEnvironment {
  /** Milliseconds since the Unix epoch. */
  now(): number;
  randomBytes(length: number): Uint8Array;
}

import { checkSignedRoot, readSignatureEntry } from "./signatures.ts";
import { type ReplicationSource, SigningRules } from "./signers.ts";
import { TxHistory, type TxMeta } from "./tx-history.ts";

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

interface StoredSignature {
  record: SignatureRecord;
  cose: Uint8Array;
}

/** A checked snapshot, ready to replace a node's state (see `LedgerState.prepareSnapshot`). */
export interface PreparedSnapshot {
  seqno: number;
  view: number;
  /** The voting configuration at the snapshot. */
  config: string[];
  state: LedgerState;
}

export { type DecodedSnapshot, LedgerStateError };

/**
 * The transaction engine of one node: KV store, Merkle tree, per-transaction metadata, signature
 * transactions, commit tracking and receipts. Deterministic: clock and randomness come from the
 * environment, and every byte bound for disk leaves through the sink.
 */
export class LedgerState {
  private _store: Store;
  private tree = new MerkleTree();
  /** Metadata of the entries after `metaStart` (a node that started from a snapshot has none before). */
  private meta = new TxHistory();
  private metaStart = 0;
  /** `[view, first seqno]` of every view with entries, oldest first. */
  private viewStarts: Array<[number, number]> = [];
  private readonly signatures = new Map<number, StoredSignature>();
  private readonly signatureSeqnos: number[] = [];
  /** Who may sign here: the nodes, certificates and view signers the ledger records so far. */
  private signers = new SigningRules();
  /** The newest signature entry as framed: the anchor of a snapshot taken there. */
  private lastSignatureFrame: { seqno: number; frame: Uint8Array } | undefined;
  private readonly commitWaits = new CommitWaits();
  private _view: number;
  private _commitSeqno = 0;
  private _txSinceSignature = 0;
  /** When (env clock) the oldest transaction no signature covers yet was added; undefined if none. */
  private _unsignedSince: number | undefined;
  /** The voting configuration after each entry that changed `nodes.info` (for consensus). */
  private readonly configs = new Map<number, string[]>();
  /** The configuration where the restored log starts (at the snapshot, or none at seqno 0). */
  startConfig: string[] = [];
  /** One copy of each node certificate and id that signatures carry (see recordSignature). */
  private readonly interned = new Map<string, string>();
  /** Bumped whenever `nodes.info` changes, so the node knows to refresh its peers. */
  nodesInfoVersion = 0;
  private _receiptWindow = DEFAULT_RECEIPT_WINDOW;
  /** The node's ledger files, read back for receipts whose proofs left memory. */
  archive: LedgerArchive | undefined;
  /** Transactions up to this seqno have their proofs only in the ledger files. */
  private archivedTo = 0;

  constructor(
    private readonly env: LedgerEnvironment,
    private readonly keys: SigningKeys,
    readonly secrets: LedgerSecrets,
    private readonly sink: LedgerSink,
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
  private setTxSinceSignature(count: number): void {
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

  private metaAt(seqno: number): TxMeta | undefined {
    return seqno > this.metaStart ? this.meta.at(seqno - this.metaStart - 1) : undefined;
  }

  private noteView(seqno: number, view: number): void {
    const last = this.viewStarts.at(-1);
    if (!last || last[0] !== view) this.viewStarts.push([view, seqno]);
  }

  txIdOf(seqno: number): string {
    return formatTxId({ view: this.viewOf(seqno), seqno });
  }

  /** Commits an executed transaction: assigns the next seqno and appends its entry. */
  commitTx(tx: Tx, claimsDigest: Uint8Array = ZERO_DIGEST): CommitOutcome {
    const result = this.store.commit(tx);
    if (!result.ok) return { ok: false };
    if (result.seqno === null) return { ok: true, seqno: null };
    this.appendEntry(result.seqno, result.writeSet, EntryType.WriteSet, claimsDigest);
    this.setTxSinceSignature(this._txSinceSignature + 1);
    return { ok: true, seqno: result.seqno, view: this._view };
  }

  /** Emits a signature transaction over the Merkle root of everything before it. */
  emitSignature(): number {
    const seqno = this.store.version + 1;
    const root = this.tree.root(seqno - 1);
    const record: SignatureRecord = {
      seqno,
      view: this._view,
      commit_seqno: this._commitSeqno,
      commit_view: this._commitSeqno === 0 ? this._view : this.viewOf(this._commitSeqno),
      root: toHex(root),
      sig: Buffer.from(signP384(this.keys.nodePrivateKey, root)).toString("base64"),
      node: this.keys.nodeId,
      cert: this.keys.nodeCertPem,
    };
    const cose = signRootCose({
      root,
      servicePrivateKeyPem: this.keys.servicePrivateKey,
      serviceKid: this.keys.serviceKid,
      txid: formatTxId({ view: this._view, seqno }),
      issuedAt: Math.floor(this.env.now() / 1000),
    });
    const tx = this.store.begin();
    tx.map(Tables.signatures).set(SINGLETON_KEY, jsonBytes(record));
    tx.map(Tables.coseSignatures).set(SINGLETON_KEY, cose);
    const result = this.store.commit(tx);
    if (!result.ok || result.seqno !== seqno)
      throw new LedgerStateError("signature transaction did not commit in order");
    this.appendEntry(seqno, result.writeSet, EntryType.Signature, ZERO_DIGEST);
    this.recordSignature(seqno, record, cose);
    this.setTxSinceSignature(0);
    return seqno;
  }

  /**
   * Rotates the ledger secret. The previous secret is kept in the ledger encrypted under the new
   * one, so the newest secret unlocks the whole history. `persist` runs before any entry is
   * encrypted with the new secret, so a crash cannot leave entries nobody can read.
   */
  rekey(newKey: Uint8Array, persist: (version: number, key: Uint8Array) => void): number {
    if (newKey.length !== 32) throw new LedgerStateError("a ledger secret is 32 bytes");
    const previous = this.secrets.current;
    const iv = this.env.randomBytes(12);
    const wrapped = aesGcmEncrypt(newKey, iv, previous.key);
    const tx = this.store.begin();
    tx.map(Tables.historicalEncryptedLedgerSecret).set(
      SINGLETON_KEY,
      jsonBytes({
        version: previous.version,
        iv: Buffer.from(iv).toString("base64"),
        encrypted_secret: Buffer.from(wrapped).toString("base64"),
      }),
    );
    const rekeySeqno = this.store.version + 1;
    const newVersion = rekeySeqno + 1;
    persist(newVersion, newKey);
    const outcome = this.commitTx(tx);
    if (!outcome.ok || outcome.seqno !== rekeySeqno)
      throw new LedgerStateError("rekey transaction did not commit");
    this.secrets.add(newVersion, newKey);
    return rekeySeqno;
  }

  private appendEntry(seqno: number, writeSet: WriteSet, type: EntryType, claimsDigest: Uint8Array): void {
    const secret = this.secrets.current;
    const evidence = commitEvidence(secret.key, this._view, seqno);
    const evidenceDigest = commitEvidenceDigest(evidence);
    const frame = encodeEntry(
      {
        seqno,
        view: this._view,
        type,
        secretVersion: secret.version,
        claimsDigest,
        commitEvidenceDigest: evidenceDigest,
        writeSet,
      },
      this.secrets,
    );
    const writeSetDigest = frameWriteSetDigest(frame);
    const viewsBefore = this.viewStarts.length;
    this.noteView(seqno, this._view);
    if (type === EntryType.Signature) this.lastSignatureFrame = { seqno, frame };
    this.meta.push({
      view: this._view,
      secretVersion: secret.version,
      writeSetDigest,
      claimsDigest,
      isSignature: type === EntryType.Signature,
    });
    this.tree.append(leafOf(writeSetDigest, evidenceDigest, claimsDigest));
    this.signers.noteWrites(seqno, writeSet);
    this.checkEnds();
    const config = this.noteConfig(seqno, writeSet);
    if (this.sink.append(seqno, frame, type === EntryType.Signature, config) === false) {
      this.signers.rollback(seqno - 1);
      this.meta.truncate(this.meta.length - 1);
      this.viewStarts.length = viewsBefore;
      this.tree.truncate(seqno - 1);
      this.store.rollback(seqno - 1);
      this.configs.delete(seqno);
      throw new NotPrimaryError("this node is not the primary");
    }
  }

  /** Records the configuration after an entry that wrote `nodes.info`; returns it (or undefined). */
  private noteConfig(seqno: number, writeSet: WriteSet): string[] | undefined {
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

  private recordSignature(seqno: number, record: SignatureRecord, cose: Uint8Array): void {
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
   * A single node reports entries durable up to `seqno`: commit advances to the last signature
   * within. (With replication, consensus decides the commit point and calls markCommitted.)
   */
  markDurable(seqno: number): void {
    let commit = this._commitSeqno;
    for (let i = this.signatureSeqnos.length - 1; i >= 0; i--) {
      const sig = this.signatureSeqnos[i]!;
      if (sig <= seqno) {
        commit = Math.max(commit, sig);
        break;
      }
    }
    this.markCommitted(commit);
  }

  /** Commit advances to `commit`, which must be a signature transaction this node holds. */
  markCommitted(commit: number): void {
    invariant(
      commit >= this._commitSeqno,
      () => `commit point would move back from ${this._commitSeqno} to ${commit}`,
    );
    if (commit === this._commitSeqno) return;
    if (!this.signatures.has(commit)) {
      throw new LedgerStateError(`commit point ${commit} is not a signature transaction`);
    }
    this._commitSeqno = commit;
    this.store.compact(commit);
    this.archiveOldProofs();
    this.commitWaits.committed(commit);
  }

  /**
   * Receipts of the transactions this far before the commit point are served from memory; the
   * proofs of older ones are dropped as commit advances and rebuilt from `archive` (receipts.ts).
   * Infinity keeps every proof in memory. A smaller window applies at once.
   */
  get receiptWindow(): number {
    return this._receiptWindow;
  }
  set receiptWindow(transactions: number) {
    if (!(transactions >= 1))
      throw new LedgerStateError(`the receipt window must be at least 1, got ${transactions}`);
    this._receiptWindow = transactions;
    this.archiveOldProofs();
  }

  /** What this node holds in memory for receipts (tests and benchmarks watch it stay bounded). */
  heldProofs(): { archivedTo: number; treePages: number; metaPages: number; signatures: number } {
    return {
      archivedTo: this.archivedTo,
      treePages: this.tree.pagesHeld,
      metaPages: this.meta.pagesHeld,
      signatures: this.signatureSeqnos.length,
    };
  }

  /**
   * Drops from memory the proofs of the transactions more than `receiptWindow` before the commit
   * point: the Merkle tree's lower levels and the metadata pages there (kept: the frontier and
   * the upper levels), and their signature records. Rollbacks never reach below the commit
   * point, and appends, signatures and snapshots need only the frontier, so only old receipts
   * are affected: `loadReceipt` rebuilds those from the ledger files.
   */
  private archiveOldProofs(): void {
    const to = this._commitSeqno - this._receiptWindow;
    if (!(to > this.archivedTo)) return;
    this.archivedTo = to;
    this.tree.compact(to, this.firstSeqnoOnDisk - 1);
    if (to > this.metaStart) this.meta.compact(to - this.metaStart);
    let dropped = 0;
    while (dropped < this.signatureSeqnos.length && this.signatureSeqnos[dropped]! <= to) {
      this.signatures.delete(this.signatureSeqnos[dropped]!);
      dropped++;
    }
    if (dropped > 0) this.signatureSeqnos.splice(0, dropped);
  }

  /**
   * The first entry the node's ledger files hold: 1, or just after the snapshot the node's history
   * starts from (that snapshot's own signature entry is in the snapshot, not the files).
   */
  private get firstSeqnoOnDisk(): number {
    return this.metaStart === 0 ? 1 : this.metaStart + 2;
  }

  /**
   * Calls `listener` each time the commit point moves forward, from inside `markCommitted` (so
   * it must not append: consensus may be mid-step; defer such work).
   */
  onCommit(listener: (commit: number) => void): void {
    this.commitWaits.onCommit(listener);
  }

  /** Resolves once `seqno` is committed. */
  waitForCommit(seqno: number): Promise<void> {
    return this.commitWaits.wait(seqno, this._commitSeqno);
  }

  /** Fails every pending wait, for shutdown. */
  abortWaiters(reason: string): void {
    this.commitWaits.abort(reason);
  }

  txStatus(view: number, seqno: number): TxStatus {
    if (seqno < 1) return "Invalid";
    if (seqno > this.lastSeqno) return view < this._view ? "Invalid" : "Unknown";
    if (this.viewOf(seqno) !== view) return "Invalid";
    return seqno <= this._commitSeqno ? "Committed" : "Pending";
  }

  /**
   * The receipt of a committed transaction from memory, or `Archived` (with where to start
   * reading) when its proof left memory: `loadReceipt` serves both.
   */
  receipt(view: number, seqno: number): ReceiptInMemory {
    const status = this.txStatus(view, seqno);
    if (status !== "Committed") return { status };
    if (seqno <= this.metaStart) return { status: "BeforeSnapshot", snapshotSeqno: this.metaStart + 1 };
    if (seqno <= this.archivedTo) {
      const firstOnDisk = this.firstSeqnoOnDisk;
      if (seqno < firstOnDisk) return { status: "BeforeSnapshot", snapshotSeqno: this.metaStart + 1 };
      return { status: "Archived", from: archiveReadFrom(seqno, firstOnDisk) };
    }
    const signatureSeqno = firstAfter(this.signatureSeqnos, seqno);
    if (signatureSeqno === undefined || signatureSeqno > this._commitSeqno) return { status: "Pending" };
    const proof = this.tree.path(seqno - 1, signatureSeqno - 1);
    return buildReceipt(
      this.secrets,
      seqno,
      this.metaAt(seqno)!,
      proof,
      this.signatures.get(signatureSeqno)!,
    );
  }

  /**
   * The receipt of any committed transaction this node holds: from memory at once, or rebuilt
   * from the ledger files (`archive`) for one whose proof left memory (slower: a chunk read).
   */
  loadReceipt(view: number, seqno: number): ReceiptLookup | Promise<ReceiptLookup> {
    const found = this.receipt(view, seqno);
    if (found.status !== "Archived") return found;
    const archive = this.archive;
    if (!archive) {
      throw new LedgerStateError(
        `the proof of seqno ${seqno} left memory and this node has no ledger files to read`,
      );
    }
    return readThroughSignature(archive, found.from, seqno, this._commitSeqno).then((entries) =>
      this.receiptFromEntries(view, seqno, entries),
    );
  }

  /**
   * A receipt rebuilt from ledger entries read from `from` (as `receipt` named it) through the
   * signature after `seqno`; a receipt still in memory is served from there.
   */
  receiptFromEntries(view: number, seqno: number, entries: readonly DecodedEntry[]): ReceiptLookup {
    const found = this.receipt(view, seqno);
    if (found.status !== "Archived") return found;
    return receiptFromEntries({
      tree: this.tree,
      secrets: this.secrets,
      view,
      seqno,
      from: found.from,
      entries,
    });
  }

  /**
   * What the snapshot at the newest signature entry, `seqno`, is made of: the store as of that
   * entry (an immutable version, readable after the state moves on) and the anchor a node needs to
   * carry on from it without the ledger before it. Taken at the signature or at the entry right
   * after it (the snapshot's announcement); encoded later, perhaps in slices (SnapshotEncoder).
   * The bytes depend only on the ledger up to `seqno`, so every node that holds it makes the same
   * file.
   */
  snapshotSourceAt(seqno: number): SnapshotSource {
    if (this.lastSignatureFrame?.seqno !== seqno) {
      throw new LedgerStateError(`seqno ${seqno} is not the newest signature transaction`);
    }
    return {
      store: this._store.versionAt(seqno),
      view: this.viewOf(seqno),
      anchor: {
        treeFrontier: this.tree.frontier(seqno - 1),
        viewHistory: this.viewStarts.filter(([, first]) => first <= seqno).map(([v, first]) => [v, first]),
        signatureFrame: this.lastSignatureFrame.frame,
      },
    };
  }

  /** The snapshot file at the newest signature entry, `seqno`, encoded at once. */
  encodeSnapshotAt(seqno: number): Uint8Array {
    return encodeSnapshotFrom(this.snapshotSourceAt(seqno), this.secrets).bytes;
  }

  /**
   * Rebuilds the state from durable entries and optionally a snapshot taken at one of them. With
   * the whole ledger (entries from seqno 1), every entry is replayed into the Merkle tree, so
   * receipts work for all of history, and the snapshot only spares replaying the store. A node
   * whose ledger starts after a snapshot (it joined or caught up from one) carries on from the
   * snapshot's anchor instead. Every signature is checked against the Merkle root recomputed
   * here, so a tampered ledger is refused.
   */
  static restore(opts: {
    env: LedgerEnvironment;
    keys: SigningKeys;
    secrets: LedgerSecrets;
    sink: LedgerSink;
    entries: DecodedEntry[];
    snapshot?: DecodedSnapshot;
    /** Where the ledger on disk starts (1 unless the node started from a snapshot). */
    ledgerStart?: number;
    /** Needed to check a snapshot's anchor: the service signs the Merkle root it continues from. */
    serviceCertPem?: string;
    /** A commit point this node saw before it stopped (a lower bound is fine). */
    commitSeqno?: number;
  }): LedgerState {
    const { entries, snapshot } = opts;
    const ledgerStart = opts.ledgerStart ?? entries[0]?.seqno ?? 1;
    const lastView = entries.at(-1)?.view ?? snapshot?.view ?? 0;
    // New entries wait for consensus to name this node primary in a later view (enterView).
    const state = new LedgerState(opts.env, opts.keys, opts.secrets, opts.sink, lastView);
    if (ledgerStart > 1) {
      const at = snapshot?.snapshot.version ?? 0;
      if (!snapshot || at < ledgerStart - 1 || at > (entries.at(-1)?.seqno ?? ledgerStart - 1)) {
        throw new LedgerStateError(
          `the ledger starts at seqno ${ledgerStart} but there is no usable snapshot from ${ledgerStart - 1} on`,
        );
      }
      state.adoptSnapshot(snapshot, opts.serviceCertPem);
      for (const entry of entries) if (entry.seqno > at) state.applyEntry(entry, true);
    } else {
      if (snapshot) state._store = Store.fromSnapshot(snapshot.snapshot);
      state.startConfig = snapshot ? state.trustedNodes() : [];
      for (const entry of entries) {
        state.applyEntry(entry, !snapshot || entry.seqno > snapshot.snapshot.version);
      }
      if (snapshot && snapshot.snapshot.version > state.lastSeqno) {
        throw new LedgerStateError(
          `snapshot at ${snapshot.snapshot.version} is ahead of the ledger (${state.lastSeqno})`,
        );
      }
    }
    // Only what is known to have committed counts as committed: the last signature at or before
    // the remembered commit point. The rest is this node's log; consensus decides its fate.
    const known = Math.max(opts.commitSeqno ?? 0, snapshot?.snapshot.version ?? 0);
    state._commitSeqno =
      [...state.signatureSeqnos].reverse().find((s) => s <= known) ?? snapshot?.snapshot.version ?? 0;
    state.store.compact(state._commitSeqno);
    state.archiveOldProofs();
    return state;
  }

  /**
   * A backup that fell behind the primary's log (or just joined) takes the primary's snapshot in
   * place of everything it had: store, Merkle tree and history restart from the snapshot's anchor,
   * which must carry a signature by a node of this service and by the service key over the tree
   * it continues. Nothing changes if the check fails.
   */
  prepareSnapshot(snapshot: DecodedSnapshot, serviceCertPem: string): PreparedSnapshot {
    if (snapshot.snapshot.version <= this._commitSeqno) {
      throw new LedgerStateError(
        `snapshot at ${snapshot.snapshot.version} is not past this node's commit point ${this._commitSeqno}`,
      );
    }
    const fresh = new LedgerState(this.env, this.keys, this.secrets, this.sink, snapshot.view);
    fresh.adoptSnapshot(snapshot, serviceCertPem);
    return { seqno: snapshot.snapshot.version, view: snapshot.view, config: fresh.startConfig, state: fresh };
  }

  /** Replaces everything this node had with a snapshot `prepareSnapshot` checked. */
  installSnapshot(prepared: PreparedSnapshot): void {
    const fresh = prepared.state;
    this._store = fresh._store;
    this.tree = fresh.tree;
    this.meta = fresh.meta;
    this.metaStart = fresh.metaStart;
    this.viewStarts = fresh.viewStarts;
    this.signatures.clear();
    this.signatureSeqnos.length = 0;
    this.signers = fresh.signers;
    for (const [seqno, signature] of fresh.signatures)
      this.recordSignature(seqno, signature.record, signature.cose);
    this.lastSignatureFrame = fresh.lastSignatureFrame;
    this.configs.clear();
    this.startConfig = fresh.startConfig;
    this._view = Math.max(this._view, fresh._view);
    this._commitSeqno = fresh._commitSeqno;
    this.setTxSinceSignature(0);
    this.nodesInfoVersion++;
    this.checkEnds();
    this.commitWaits.replaced(this._commitSeqno);
  }

  /** Starts this (empty) state from a snapshot and its anchor, checking the anchor's signatures. */
  private adoptSnapshot(decoded: DecodedSnapshot, serviceCertPem: string | undefined): void {
    const { seqno, store, tree, entry, signature, signers } = checkSnapshot(
      decoded,
      this.secrets,
      serviceCertPem,
    );
    const { anchor, view } = decoded;
    this.signers = signers;
    this._store = store;
    this.tree = tree;
    this.metaStart = seqno - 1;
    this.viewStarts = anchor.viewHistory.map(([v, first]) => [v, first]);
    this._view = Math.max(this._view, view);
    this.tree.append(leafOf(entry.writeSetDigest, entry.commitEvidenceDigest, entry.claimsDigest));
    this.meta = new TxHistory();
    this.meta.push({
      view: entry.view,
      secretVersion: entry.secretVersion,
      writeSetDigest: entry.writeSetDigest,
      claimsDigest: entry.claimsDigest,
      isSignature: true,
    });
    this.recordSignature(seqno, signature.record, signature.cose);
    this.lastSignatureFrame = { seqno, frame: anchor.signatureFrame };
    this._commitSeqno = seqno;
    this.startConfig = this.trustedNodes();
  }

  /**
   * Disaster recovery: rebuilds the public half of a lost service's state from a surviving
   * ledger (its signed prefix), without the ledger secret. Every signature is checked against the
   * Merkle root recomputed here and the service's COSE signature against the previous service
   * certificate; commit evidence cannot be checked without the secret, and private write sets are
   * skipped until recovery members bring the secret back (`recoverPrivate`). New entries use
   * `secrets` (the recovered service's own secret).
   */
  static restorePublic(opts: {
    env: LedgerEnvironment;
    keys: SigningKeys;
    secrets: LedgerSecrets;
    sink: LedgerSink;
    entries: DecodedEntry[];
    previousServiceCertPem: string;
  }): LedgerState {
    const { entries } = opts;
    if (entries.length === 0 || entries[0]!.seqno !== 1) {
      throw new LedgerStateError("recovery needs the whole ledger, from seqno 1");
    }
    const last = entries.at(-1)!;
    if (last.type !== EntryType.Signature) {
      throw new LedgerStateError(
        `the ledger must end at a signature for recovery; seqno ${last.seqno} is not one`,
      );
    }
    const state = new LedgerState(opts.env, opts.keys, opts.secrets, opts.sink, last.view);
    for (const entry of entries) {
      const signature = state.applyEntry(entry, true, true);
      if (
        signature &&
        !coseVerifySign1(signature.cose, opts.previousServiceCertPem, state.tree.root(entry.seqno - 1))
      ) {
        throw new LedgerStateError(
          `seqno ${entry.seqno}: the root is not signed by the previous service certificate given`,
        );
      }
    }
    state._commitSeqno = last.seqno;
    state.store.compact(last.seqno);
    return state;
  }

  /**
   * A backup's path: appends an entry the primary made, after checking it as a restart would
   * (contiguous, commit evidence matching the ledger secret, signatures over this node's own
   * Merkle root, by a node that may sign there: see `SigningRules`). `source` names the primary
   * this backup follows in its current view: a signature of that view must be its. A bad entry
   * is refused with a LedgerStateError (or SignatureCheckError) and changes nothing.
   */
  applyReplicated(entry: DecodedEntry, source?: ReplicationSource): void {
    this.applyEntry(entry, true, false, source);
    if (entry.view > this._view) this._view = entry.view;
    this.checkEnds();
  }

  private applyEntry(
    entry: DecodedEntry,
    applyToStore: boolean,
    publicOnly = false,
    source?: ReplicationSource,
  ): { record: SignatureRecord; cose: Uint8Array } | undefined {
    const expectedSeqno = this.lastSeqno + 1;
    if (entry.seqno !== expectedSeqno) {
      throw new LedgerStateError(
        `ledger is not contiguous: expected seqno ${expectedSeqno}, found ${entry.seqno}`,
      );
    }
    if (!publicOnly) {
      const evidence = commitEvidence(this.secrets.get(entry.secretVersion), entry.view, entry.seqno);
      if (!equalBytes(commitEvidenceDigest(evidence), entry.commitEvidenceDigest)) {
        throw new LedgerStateError(
          `commit evidence of seqno ${entry.seqno} does not match the ledger secret`,
        );
      }
    }
    const signature = entry.type === EntryType.Signature ? readSignatureEntry(entry) : undefined;
    if (signature) {
      checkSignedRoot(entry.seqno, signature.record, this.tree.root(entry.seqno - 1));
      this.signers.check(entry.seqno, entry.view, signature.record, source);
    }
    // Decrypt before touching any state, so a bad entry leaves everything as it was.
    const writeSet = !applyToStore
      ? undefined
      : publicOnly
        ? [...entry.publicWriteSet]
        : decryptEntry(entry, this.secrets);
    if (writeSet) {
      this.store.apply(entry.seqno, writeSet);
      this.noteConfig(entry.seqno, writeSet);
    }
    // Also for entries the store skips (before a snapshot): the rules follow the whole ledger.
    this.signers.noteWrites(entry.seqno, entry.publicWriteSet);
    if (signature) this.recordSignature(entry.seqno, signature.record, signature.cose);
    this.noteView(entry.seqno, entry.view);
    if (signature) this.lastSignatureFrame = { seqno: entry.seqno, frame: entry.frame };
    this.meta.push({
      view: entry.view,
      secretVersion: entry.secretVersion,
      writeSetDigest: entry.writeSetDigest,
      claimsDigest: entry.claimsDigest,
      isSignature: entry.type === EntryType.Signature,
    });
    this.tree.append(leafOf(entry.writeSetDigest, entry.commitEvidenceDigest, entry.claimsDigest));
    this.setTxSinceSignature(signature ? 0 : this._txSinceSignature + 1);
    return signature;
  }

  /**
   * Drops every transaction after `seqno` (an uncommitted suffix a new primary did not keep).
   * Clients waiting for those transactions are told they will never commit.
   */
  rollback(seqno: number): void {
    if (seqno < this._commitSeqno) {
      throw new LedgerStateError(`cannot roll back to ${seqno}: ${this._commitSeqno} is committed`);
    }
    if (seqno >= this.lastSeqno) return;
    this.store.rollback(seqno);
    this.signers.rollback(seqno);
    this.tree.truncate(seqno);
    this.meta.truncate(seqno - this.metaStart);
    while ((this.viewStarts.at(-1)?.[1] ?? 0) > seqno) this.viewStarts.pop();
    for (const at of [...this.configs.keys()]) if (at > seqno) this.configs.delete(at);
    this.nodesInfoVersion++;
    while ((this.signatureSeqnos.at(-1) ?? 0) > seqno) this.signatures.delete(this.signatureSeqnos.pop()!);
    if ((this.lastSignatureFrame?.seqno ?? 0) > seqno) this.lastSignatureFrame = undefined;
    this.setTxSinceSignature(seqno - this.lastSignatureSeqno);
    this.checkEnds();
    this.commitWaits.rolledBack(seqno);
  }

  /**
   * The store, the Merkle tree and the entries' metadata end at the same seqno: a receipt proves
   * leaf `seqno - 1` of the tree and the store's version is the seqno, so if they drifted apart
   * receipts and signatures would cover other transactions than the ledger holds.
   */
  private checkEnds(): void {
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
