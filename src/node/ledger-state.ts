import type { KeyObject } from "node:crypto";
import {
  aesGcmEncrypt,
  buildCoseReceipt,
  buildJsonReceipt,
  equalBytes,
  type JsonReceipt,
  MerkleTree,
  signP384,
  signRootCose,
  toHex,
} from "../crypto/index.ts";
import { formatTxId, Store, type StoreSnapshot, type Tx, type WriteSet } from "../kv/index.ts";
import {
  commitEvidence,
  commitEvidenceDigest,
  type DecodedEntry,
  decryptEntry,
  EntryType,
  encodeEntry,
  frameWriteSetDigest,
  type LedgerSecrets,
  leafOf,
} from "../ledger/index.ts";
import type { Environment } from "./env.ts";
import { checkSignedRoot, readSignatureEntry } from "./signatures.ts";
import {
  fromUtf8,
  jsonBytes,
  type NodeInfo,
  parseJsonBytes,
  SINGLETON_KEY,
  type SignatureRecord,
  Tables,
} from "./tables.ts";

/** Where committed entries go: the shell writes them to disk (and, later, to other nodes). */
export interface LedgerSink {
  /**
   * Takes a new entry. `config` is set when the entry changes which nodes are trusted: the
   * complete new set of voting node ids. Returning false refuses it (this node is no longer
   * primary): the transaction is undone and `commitTx` throws NotPrimaryError.
   */
  append(seqno: number, frame: Uint8Array, isSignature: boolean, config?: string[]): boolean;
}

/** This node cannot create transactions now: another node is (or is becoming) primary. */
export class NotPrimaryError extends Error {}

/** The keys this node signs with. */
export interface SigningKeys {
  nodeId: string;
  nodeCertPem: string;
  nodePrivateKey: KeyObject;
  servicePrivateKey: KeyObject;
  /** COSE `kid` of the service key. */
  serviceKid: Uint8Array;
}

export type TxStatus = "Unknown" | "Pending" | "Committed" | "Invalid";

export type CommitOutcome =
  | { ok: true; seqno: number; view: number }
  | { ok: true; seqno: null }
  | { ok: false };

export type ReceiptLookup =
  | { status: "ok"; json: JsonReceipt; cose: Uint8Array }
  | { status: "Pending" | "Unknown" | "Invalid" };

interface TxMeta {
  view: number;
  secretVersion: number;
  writeSetDigest: Uint8Array;
  claimsDigest: Uint8Array;
  isSignature: boolean;
}

interface StoredSignature {
  record: SignatureRecord;
  cose: Uint8Array;
}

export const ZERO_DIGEST = new Uint8Array(32);

export class LedgerStateError extends Error {}

/**
 * The transaction engine of one node: KV store, Merkle tree, per-transaction metadata, signature
 * transactions, commit tracking and receipts. Deterministic: clock and randomness come from the
 * environment, and every byte bound for disk leaves through the sink.
 */
export class LedgerState {
  readonly store: Store;
  private readonly tree = new MerkleTree();
  private readonly meta: TxMeta[] = [];
  private readonly signatures = new Map<number, StoredSignature>();
  private readonly signatureSeqnos: number[] = [];
  private commitWaiters: Array<{ seqno: number; resolve: () => void; reject: (e: Error) => void }> = [];
  private _view: number;
  private _commitSeqno = 0;
  private _txSinceSignature = 0;
  /** The voting configuration after each entry that changed `nodes.info` (for consensus). */
  private readonly configs = new Map<number, string[]>();
  /** The configuration where the restored log starts (at the snapshot, or none at seqno 0). */
  startConfig: string[] = [];
  /** Bumped whenever `nodes.info` changes, so the node knows to refresh its peers. */
  nodesInfoVersion = 0;

  constructor(
    private readonly env: Environment,
    private readonly keys: SigningKeys,
    readonly secrets: LedgerSecrets,
    private readonly sink: LedgerSink,
    view: number,
    store?: Store,
  ) {
    this._view = view;
    this.store = store ?? new Store();
  }

  get view(): number {
    return this._view;
  }
  get commitSeqno(): number {
    return this._commitSeqno;
  }
  get lastSeqno(): number {
    return this.meta.length;
  }
  get txSinceSignature(): number {
    return this._txSinceSignature;
  }
  get lastSignatureSeqno(): number {
    return this.signatureSeqnos.at(-1) ?? 0;
  }

  viewOf(seqno: number): number {
    if (seqno === 0) return this._view;
    const meta = this.meta[seqno - 1];
    if (!meta) throw new LedgerStateError(`no transaction at seqno ${seqno}`);
    return meta.view;
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
    this._txSinceSignature++;
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
    this._txSinceSignature = 0;
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
    this.meta.push({
      view: this._view,
      secretVersion: secret.version,
      writeSetDigest,
      claimsDigest,
      isSignature: type === EntryType.Signature,
    });
    this.tree.append(leafOf(writeSetDigest, evidenceDigest, claimsDigest));
    const config = this.noteConfig(seqno, writeSet);
    if (this.sink.append(seqno, frame, type === EntryType.Signature, config) === false) {
      this.meta.pop();
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

  /** All of a framework map with string keys (node and policy tables: small by nature). */
  readSmallMap(name: string): Array<[string, Uint8Array]> {
    const tx = this.store.begin();
    const { entries } = tx.map(name).range({ limit: 10_000 });
    tx.abandon();
    return entries.map(([key, value]) => [fromUtf8(key), value]);
  }

  private recordSignature(seqno: number, record: SignatureRecord, cose: Uint8Array): void {
    this.signatures.set(seqno, { record, cose });
    this.signatureSeqnos.push(seqno);
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
    if (commit <= this._commitSeqno) return;
    if (!this.signatures.has(commit)) {
      throw new LedgerStateError(`commit point ${commit} is not a signature transaction`);
    }
    this._commitSeqno = commit;
    this.store.compact(commit);
    const waiting = this.commitWaiters;
    this.commitWaiters = [];
    for (const waiter of waiting) {
      if (waiter.seqno <= commit) waiter.resolve();
      else this.commitWaiters.push(waiter);
    }
  }

  /** Resolves once `seqno` is committed. */
  waitForCommit(seqno: number): Promise<void> {
    if (seqno <= this._commitSeqno) return Promise.resolve();
    return new Promise((resolve, reject) => this.commitWaiters.push({ seqno, resolve, reject }));
  }

  /** Fails every pending wait, for shutdown. */
  abortWaiters(reason: string): void {
    for (const waiter of this.commitWaiters) waiter.reject(new LedgerStateError(reason));
    this.commitWaiters = [];
  }

  txStatus(view: number, seqno: number): TxStatus {
    if (seqno < 1) return "Invalid";
    const meta = this.meta[seqno - 1];
    if (!meta) return view < this._view ? "Invalid" : "Unknown";
    if (meta.view !== view) return "Invalid";
    return seqno <= this._commitSeqno ? "Committed" : "Pending";
  }

  receipt(view: number, seqno: number): ReceiptLookup {
    const status = this.txStatus(view, seqno);
    if (status !== "Committed") return { status };
    const signatureSeqno = this.signatureSeqnos.find((s) => s > seqno);
    if (signatureSeqno === undefined || signatureSeqno > this._commitSeqno) return { status: "Pending" };
    const signature = this.signatures.get(signatureSeqno)!;
    const meta = this.meta[seqno - 1]!;
    const proof = this.tree.path(seqno - 1, signatureSeqno - 1);
    const evidence = commitEvidence(this.secrets.get(meta.secretVersion), meta.view, seqno);
    const json = buildJsonReceipt({
      nodeCertPem: signature.record.cert,
      nodeId: signature.record.node,
      signature: Buffer.from(signature.record.sig, "base64"),
      proof,
      leafComponents: {
        write_set_digest: toHex(meta.writeSetDigest),
        commit_evidence: evidence,
        claims_digest: toHex(meta.claimsDigest),
      },
    });
    if (meta.isSignature) json.is_signature_transaction = true;
    const cose = buildCoseReceipt({
      signedRoot: signature.cose,
      proof,
      writeSetDigest: meta.writeSetDigest,
      commitEvidence: evidence,
      claimsDigest: meta.claimsDigest,
    });
    return { status: "ok", json, cose };
  }

  /** Current KV snapshot, for snapshot files. */
  snapshot(): StoreSnapshot {
    return this.store.snapshot();
  }

  /**
   * Rebuilds the state from durable entries (contiguous from 1) and optionally a snapshot taken
   * at one of them. Every signature is checked against the Merkle
   * root recomputed here, so a tampered ledger is refused.
   */
  static restore(opts: {
    env: Environment;
    keys: SigningKeys;
    secrets: LedgerSecrets;
    sink: LedgerSink;
    entries: DecodedEntry[];
    snapshot?: StoreSnapshot;
    /** A commit point this node saw before it stopped (a lower bound is fine). */
    commitSeqno?: number;
  }): LedgerState {
    const { entries, snapshot } = opts;
    const store = snapshot ? Store.fromSnapshot(snapshot) : new Store();
    const lastView = entries.at(-1)?.view ?? 0;
    // New entries wait for consensus to name this node primary in a later view (enterView).
    const state = new LedgerState(opts.env, opts.keys, opts.secrets, opts.sink, lastView, store);
    state.startConfig = snapshot ? state.trustedNodes() : [];
    for (const entry of entries) {
      state.applyEntry(entry, !snapshot || entry.seqno > snapshot.version);
    }
    if (snapshot && snapshot.version > state.meta.length) {
      throw new LedgerStateError(
        `snapshot at ${snapshot.version} is ahead of the ledger (${state.meta.length})`,
      );
    }
    // Only what is known to have committed counts as committed: the last signature at or before
    // the remembered commit point. The rest is this node's log; consensus decides its fate.
    const known = Math.max(opts.commitSeqno ?? 0, snapshot?.version ?? 0);
    state._commitSeqno =
      [...state.signatureSeqnos].reverse().find((s) => s <= known) ?? snapshot?.version ?? 0;
    state.store.compact(state._commitSeqno);
    return state;
  }

  /**
   * A backup's path: appends an entry the primary made, after checking it as a restart would
   * (contiguous, commit evidence matching the ledger secret, signatures over this node's own
   * Merkle root). A bad entry is refused with a LedgerStateError and changes nothing.
   */
  applyReplicated(entry: DecodedEntry): void {
    this.applyEntry(entry, true);
    if (entry.view > this._view) this._view = entry.view;
  }

  private applyEntry(entry: DecodedEntry, applyToStore: boolean): void {
    const expectedSeqno = this.meta.length + 1;
    if (entry.seqno !== expectedSeqno) {
      throw new LedgerStateError(
        `ledger is not contiguous: expected seqno ${expectedSeqno}, found ${entry.seqno}`,
      );
    }
    const evidence = commitEvidence(this.secrets.get(entry.secretVersion), entry.view, entry.seqno);
    if (!equalBytes(commitEvidenceDigest(evidence), entry.commitEvidenceDigest)) {
      throw new LedgerStateError(`commit evidence of seqno ${entry.seqno} does not match the ledger secret`);
    }
    const signature = entry.type === EntryType.Signature ? readSignatureEntry(entry) : undefined;
    if (signature) checkSignedRoot(entry.seqno, signature.record, this.tree.root(entry.seqno - 1));
    // Decrypt before touching any state, so a bad entry leaves everything as it was.
    const writeSet = applyToStore ? decryptEntry(entry, this.secrets) : undefined;
    if (writeSet) {
      this.store.apply(entry.seqno, writeSet);
      this.noteConfig(entry.seqno, writeSet);
    }
    if (signature) this.recordSignature(entry.seqno, signature.record, signature.cose);
    this.meta.push({
      view: entry.view,
      secretVersion: entry.secretVersion,
      writeSetDigest: entry.writeSetDigest,
      claimsDigest: entry.claimsDigest,
      isSignature: entry.type === EntryType.Signature,
    });
    this.tree.append(leafOf(entry.writeSetDigest, entry.commitEvidenceDigest, entry.claimsDigest));
    this._txSinceSignature = signature ? 0 : this._txSinceSignature + 1;
  }

  /**
   * Drops every transaction after `seqno` (an uncommitted suffix a new primary did not keep).
   * Clients waiting for those transactions are told they will never commit.
   */
  rollback(seqno: number): void {
    if (seqno < this._commitSeqno) {
      throw new LedgerStateError(`cannot roll back to ${seqno}: ${this._commitSeqno} is committed`);
    }
    if (seqno >= this.meta.length) return;
    this.store.rollback(seqno);
    this.tree.truncate(seqno);
    this.meta.length = seqno;
    for (const at of [...this.configs.keys()]) if (at > seqno) this.configs.delete(at);
    this.nodesInfoVersion++;
    while ((this.signatureSeqnos.at(-1) ?? 0) > seqno) this.signatures.delete(this.signatureSeqnos.pop()!);
    this._txSinceSignature = seqno - this.lastSignatureSeqno;
    const waiting = this.commitWaiters;
    this.commitWaiters = [];
    for (const waiter of waiting) {
      if (waiter.seqno > seqno)
        waiter.reject(new LedgerStateError(`transaction at seqno ${waiter.seqno} was rolled back`));
      else this.commitWaiters.push(waiter);
    }
  }

  /** A new view begins (this node became primary, or restarted): new entries carry it. */
  enterView(view: number): void {
    if (view < this._view) throw new LedgerStateError(`view cannot go back from ${this._view} to ${view}`);
    this._view = view;
  }
}
