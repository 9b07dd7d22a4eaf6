import { aesGcmEncrypt, equalBytes, signP384, signRootCose, toHex } from "../crypto/index.ts";
import { formatTxId, type Tx, type WriteSet } from "../kv/index.ts";
import { type DecodedEntry, decryptEntry, EntryType, encodeEntry, frameWriteSetDigest } from "./entry.ts";
import { LedgerStateError } from "./errors.ts";
import { commitEvidence, commitEvidenceDigest, leafOf } from "./evidence.ts";
import { type CommitOutcome, NotPrimaryError, ZERO_DIGEST } from "./outcomes.ts";
import { checkSignedRoot, readSignatureEntry } from "./signatures.ts";
import type { ReplicationSource } from "./signers.ts";
import type { DecodedSnapshot } from "./snapshot-adopt.ts";
import {
  LedgerRestore,
  type RestoreOptions,
  type RestorePublicOptions,
  recoverableEnd,
  restoredView,
} from "./state-restore.ts";
import { jsonBytes, SINGLETON_KEY, type SignatureRecord, Tables } from "./tables.ts";

export type { LedgerEnvironment, LedgerSink, SigningKeys } from "./state-base.ts";

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
 * environment, and every byte bound for disk leaves through the sink. This last layer holds the
 * write path (commit, sign, rekey), the apply path (entries from a primary or the files) and
 * rollback; the layers below it are listed in state-base.ts.
 */
export class LedgerState extends LedgerRestore {
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

  /**
   * Rebuilds the state from durable entries and optionally a snapshot taken at one of them. With
   * the whole ledger (entries from seqno 1), every entry is replayed into the Merkle tree, so
   * receipts work for all of history, and the snapshot only spares replaying the store. A node
   * whose ledger starts after a snapshot (it joined or caught up from one) carries on from the
   * snapshot's anchor instead. Every signature is checked against the Merkle root recomputed
   * here, so a tampered ledger is refused.
   */
  static restore(opts: RestoreOptions): LedgerState {
    // New entries wait for consensus to name this node primary in a later view (enterView).
    const state = new LedgerState(opts.env, opts.keys, opts.secrets, opts.sink, restoredView(opts));
    state.replay(opts, (entry, applyToStore) => state.applyEntry(entry, applyToStore));
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
    this.takeOver(prepared.state);
  }

  /**
   * Disaster recovery: rebuilds the public half of a lost service's state from a surviving
   * ledger (its signed prefix), without the ledger secret. Every signature is checked against the
   * Merkle root recomputed here and the service's COSE signature against the previous service
   * certificate; commit evidence cannot be checked without the secret, and private write sets are
   * skipped until recovery members bring the secret back (`recoverPrivate`). New entries use
   * `secrets` (the recovered service's own secret).
   */
  static restorePublic(opts: RestorePublicOptions): LedgerState {
    const last = recoverableEnd(opts.entries);
    const state = new LedgerState(opts.env, opts.keys, opts.secrets, opts.sink, last.view);
    state.replayPublic(opts, (entry) => state.applyEntry(entry, true, true));
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
}
