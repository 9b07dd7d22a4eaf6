import { createHash } from "node:crypto";
import type { Entry, NodeId, SnapshotPoint } from "../../src/consensus/index.ts";
import { toHex, verifyCoseReceipt, verifyJsonReceipt } from "../../src/crypto/index.ts";
import { Store, type StoreSnapshot } from "../../src/kv/index.ts";
import {
  decodeEntry,
  decodeSnapshot,
  decryptEntry,
  EntryType,
  type LedgerSecret,
  LedgerSecrets,
  LedgerState,
} from "../../src/ledger/index.ts";
import { entryDigest, storeDigest, type WriteRegistry } from "./app.ts";
import { signingKeys } from "./keys.ts";
import type { SimNode } from "./node.ts";
import type { Observer } from "./node-env.ts";
import type { Prng } from "./prng.ts";

/** A broken safety property: the simulation stops at the first one. */
export class SafetyViolation extends Error {
  override name = "SafetyViolation";
}

function fail(message: string): never {
  throw new SafetyViolation(message);
}

/** What the run committed at one seqno (the first node to commit it recorded it). */
interface CommittedEntry {
  digest: string;
  /** Readable and the same on every replay (signature bytes are not: see docs/consensus.md). */
  label: string;
  view: number;
  /** The view of the primary that first committed it. */
  commitView: number;
  writeSetDigest: string;
  claimsDigest: string;
}

/**
 * The safety properties, checked as the simulation runs:
 *
 * - at most one primary per view;
 * - every commit point is a signature entry;
 * - committed entries are the same on every node (a global record of seqno -> entry; a committed
 *   entry is never lost or changed), and every new primary's log holds all of them;
 * - every node's store at its commit point equals the replay of the committed ledger (the
 *   checker decrypts each committed entry once and applies it to a store of its own);
 * - snapshots, taken or installed, hold exactly that replayed state;
 * - no node ever saw a well-formed message that breaks the protocol (Raft counts those);
 * - the engine's ledger ends where Raft's log ends.
 *
 * and, at the end and periodically, on every live node: the ledger it wrote equals its Raft log;
 * replaying it into a fresh engine (`LedgerState.restore`) gives the node's state; receipts for a
 * sample of committed transactions verify against the service certificate.
 */
export class Checker implements Observer {
  private readonly primaries = new Map<number, NodeId>();
  private readonly committedEntries: CommittedEntry[] = [];
  private readonly reference = new Store();
  /** Digest of the replayed store after each committed signature (where nodes commit). */
  private readonly states = new Map<number, string>([[0, storeDigest(new Store().snapshot())]]);
  private readonly secrets: LedgerSecrets;
  /** Replays done, by a fingerprint of the exact ledger and snapshot replayed. */
  private readonly replays = new Map<string, { lastSeqno: number; commitSeqno: number; store: string }>();
  readonly stats = {
    elections: 0,
    commits: 0,
    signatures: 0,
    snapshotsInstalled: 0,
    snapshotsTaken: 0,
    receiptsVerified: 0,
    /** Of those, receipts whose proofs had left the node's memory, rebuilt from its ledger. */
    receiptsRebuilt: 0,
    replays: 0,
  };
  /** When each client write first committed, by "client:number" (request id without attempt). */
  readonly writeCommitTimes = new Map<string, number>();

  constructor(
    private readonly now: () => number,
    secret: LedgerSecret,
    private readonly serviceCertPem: string,
    private readonly writes: WriteRegistry,
  ) {
    this.secrets = new LedgerSecrets([secret]);
  }

  get committedSeqno(): number {
    return this.committedEntries.length;
  }

  private record(seqno: number): CommittedEntry | undefined {
    return this.committedEntries[seqno - 1];
  }

  /** "3.17 write client1:5", "3.18 signature", "3.19 config [n1,n2,n4]". */
  label(entry: Entry): string {
    const decoded = decodeEntry(entry.data);
    const what =
      decoded.type === EntryType.Signature
        ? "signature"
        : entry.config
          ? `config [${entry.config}]`
          : `write ${this.writes.operationFor(decoded.claimsDigest) ?? "(not a client write)"}`;
    return `${entry.view}.${entry.seqno} ${what}`;
  }

  primary(node: SimNode, view: number): void {
    this.stats.elections++;
    const other = this.primaries.get(view);
    if (other !== undefined && other !== node.id)
      fail(`two primaries in view ${view}: ${other} and ${node.id}`);
    this.primaries.set(view, node.id);
    // Leader completeness: the new primary holds every entry committed in an earlier view
    // (except what it compacted into a snapshot). A primary of an older view may still be
    // elected late, from delayed votes; it cannot commit anything, so it is not checked.
    const raft = node.raft!;
    for (let seqno = raft.logStart.seqno + 1; seqno <= this.committedSeqno; seqno++) {
      const record = this.record(seqno)!;
      if (record.commitView >= view) continue;
      const entry = raft.entry(seqno);
      if (!entry || entryDigest(entry) !== record.digest) {
        fail(
          `${node.id} became primary of view ${view} without committed entry ${seqno} ` +
            `(has ${entry ? this.label(entry) : "nothing"}, committed ${record.label})`,
        );
      }
    }
  }

  committed(node: SimNode, entry: Entry): void {
    const digest = entryDigest(entry);
    const known = this.record(entry.seqno);
    if (known !== undefined) {
      if (known.digest !== digest)
        fail(
          `${node.id} committed ${this.label(entry)} at ${entry.seqno}, where ${known.label} was committed`,
        );
      return;
    }
    if (entry.seqno !== this.committedSeqno + 1)
      fail(`${node.id} committed ${entry.seqno} before ${this.committedSeqno + 1}`);
    const decoded = decodeEntry(entry.data);
    this.committedEntries.push({
      digest,
      label: this.label(entry),
      view: entry.view,
      commitView: node.raft!.view,
      writeSetDigest: toHex(decoded.writeSetDigest),
      claimsDigest: toHex(decoded.claimsDigest),
    });
    this.stats.commits++;
    const operation = this.writes.operationFor(decoded.claimsDigest);
    if (operation !== undefined) {
      if (this.writeCommitTimes.has(operation))
        fail(`write ${operation} committed twice (at ${entry.seqno})`);
      this.writeCommitTimes.set(operation, this.now());
    }
    // The reference replay: decrypt and apply, independently of any node's engine.
    this.reference.apply(entry.seqno, decryptEntry(decoded, this.secrets));
    if (decoded.type === EntryType.Signature) {
      this.stats.signatures++;
      this.states.set(entry.seqno, storeDigest(this.reference.snapshot()));
      this.reference.compact(entry.seqno);
    }
  }

  commitPoint(node: SimNode, seqno: number): void {
    const entry = node.raft!.entry(seqno);
    if (entry && !entry.isSignature) fail(`${node.id} committed at ${seqno}, which is not a signature`);
  }

  applied(node: SimNode): void {
    const raft = node.raft!;
    const state = node.state!;
    if (state.commitSeqno !== raft.commitSeqno || node.applied !== raft.commitSeqno)
      fail(`${node.id}'s engine committed ${state.commitSeqno}, Raft ${raft.commitSeqno}`);
    const expected = this.states.get(state.commitSeqno);
    if (!expected)
      fail(`${node.id} committed up to ${state.commitSeqno}, which is not a committed signature`);
    if (storeDigest(node.committedSnapshot()) !== expected)
      fail(`${node.id}'s store at ${state.commitSeqno} differs from the replay of the committed ledger`);
  }

  private checkSnapshotState(
    node: SimNode,
    point: SnapshotPoint,
    snapshot: StoreSnapshot,
    what: string,
  ): void {
    const expected = this.states.get(point.seqno);
    if (!expected) fail(`${node.id} ${what} a snapshot at ${point.seqno}, not a committed signature`);
    if (storeDigest(snapshot) !== expected)
      fail(`${node.id} ${what} a snapshot at ${point.seqno} that differs from the replay of the ledger`);
    const record = this.record(point.seqno);
    if (!record?.label.startsWith(`${point.view}.${point.seqno} `))
      fail(`snapshot point ${point.view}.${point.seqno} is not the committed entry ${record?.label}`);
  }

  snapshotInstalled(node: SimNode, point: SnapshotPoint, snapshot: StoreSnapshot): void {
    this.stats.snapshotsInstalled++;
    this.checkSnapshotState(node, point, snapshot, "installed");
  }

  snapshotTaken(node: SimNode, point: SnapshotPoint, bytes: Uint8Array): void {
    this.stats.snapshotsTaken++;
    this.checkSnapshotState(node, point, decodeSnapshot(bytes, this.secrets).snapshot, "took");
  }

  afterEvent(node: SimNode): void {
    const raft = node.raft!;
    const state = node.state!;
    if (raft.stats.protocolViolations > 0)
      fail(`${node.id} saw a protocol violation: ${raft.stats.lastProblem}`);
    const view = state.lastSeqno === 0 ? 0 : state.viewOf(state.lastSeqno);
    if (state.lastSeqno !== raft.lastSeqno || view !== raft.lastView) {
      fail(
        `${node.id}'s engine ends at ${view}.${state.lastSeqno}, its Raft log at ${raft.lastView}.${raft.lastSeqno}`,
      );
    }
  }

  broken(node: SimNode, problem: string): never {
    fail(`${node.id}: ${problem}`);
  }

  /** The ledger a live node wrote equals its Raft log entry for entry, from the log's start. */
  checkLedger(node: SimNode): void {
    const raft = node.raft!;
    const written = node.disk.written();
    const start = raft.logStart.seqno;
    if (written.ledgerStart > start + 1)
      fail(`${node.id}'s ledger starts at ${written.ledgerStart}, its Raft log after ${start}`);
    const entries = written.entries.filter((e) => e.seqno > start);
    if (entries.length !== raft.lastSeqno - start)
      fail(
        `${node.id}'s ledger holds ${entries.length} entries after ${start}, its Raft log ${raft.lastSeqno - start}`,
      );
    for (const entry of entries) {
      const own = raft.entry(entry.seqno);
      if (!own || entryDigest(own) !== entryDigest(entry))
        fail(`${node.id}'s ledger differs from its Raft log at ${entry.seqno}`);
    }
  }

  /**
   * Replays the ledger a live node wrote (and its snapshot) into a fresh engine, as a restart
   * would, and compares: same last entry, same commit point, same store there. Nodes that wrote
   * byte-identical ledgers share one replay (restore is deterministic; each node's own state is
   * still compared with it).
   */
  checkReplay(node: SimNode): void {
    const state = node.state!;
    const written = node.disk.written();
    const snapshot = written.snapshot;
    let { ledgerStart, entries } = written;
    if (snapshot && (entries.at(-1)?.seqno ?? ledgerStart - 1) < snapshot.point.seqno) {
      ledgerStart = snapshot.point.seqno + 1;
      entries = [];
    }
    const commit = state.commitSeqno;
    const key = createHash("sha256");
    key.update(`${ledgerStart}:${commit}:${entries.length}:`);
    if (snapshot) key.update(snapshot.bytes);
    for (const entry of entries) key.update(entry.data);
    const fingerprint = key.digest("hex");
    let replayed = this.replays.get(fingerprint);
    if (!replayed) {
      const secrets = new LedgerSecrets(this.secrets.list());
      let fresh: LedgerState;
      try {
        fresh = LedgerState.restore({
          env: { now: () => 0, randomBytes: (n) => new Uint8Array(n) },
          keys: signingKeys(node.id),
          secrets,
          sink: { append: () => fail("a replay does not create entries") },
          entries: entries.map((e) => decodeEntry(e.data)),
          ...(snapshot ? { snapshot: decodeSnapshot(snapshot.bytes, secrets) } : {}),
          ledgerStart,
          serviceCertPem: this.serviceCertPem,
          commitSeqno: commit,
        });
      } catch (error) {
        fail(`${node.id}'s ledger does not replay: ${(error as Error).message}`);
      }
      this.stats.replays++;
      replayed = {
        lastSeqno: fresh.lastSeqno,
        commitSeqno: fresh.commitSeqno,
        store: fresh.commitSeqno === commit ? storeDigest(fresh.store.snapshot(commit)) : "",
      };
      this.replays.set(fingerprint, replayed);
    }
    if (replayed.lastSeqno !== state.lastSeqno || replayed.commitSeqno !== commit) {
      fail(
        `${node.id}'s ledger replays to last ${replayed.lastSeqno}, commit ${replayed.commitSeqno}; ` +
          `the node has last ${state.lastSeqno}, commit ${commit}`,
      );
    }
    if (replayed.store !== storeDigest(node.committedSnapshot()))
      fail(`${node.id}'s store at ${commit} differs from the replay of its own ledger`);
  }

  /**
   * Asks a live node for receipts of `count` committed transactions (drawn with `sampler`, so
   * the run's own randomness is untouched) and verifies each, JSON and COSE, against the service
   * certificate; each must prove the entry that committed at that seqno.
   */
  checkReceipts(node: SimNode, sampler: Prng, count: number): void {
    const state = node.state!;
    // A node started from a snapshot holds the snapshot's own signature entry only in the
    // snapshot, not in its ledger files: once that entry's proof left memory it has no receipt for
    // it (it answers ReceiptNotAvailable), so receipts are asked for from the entry after it.
    const start = state.historyStart;
    const first = Math.max(1, start > 0 && state.heldProofs().archivedTo >= start ? start + 1 : start);
    // The commit point itself is a signature whose receipt needs a later one.
    const last = state.commitSeqno - 1;
    if (last < first) return;
    for (let i = 0; i < count; i++) {
      const seqno = sampler.between(first, last);
      const record = this.record(seqno)!;
      const view = record.view;
      const txid = `${view}.${seqno}`;
      let lookup = state.receipt(view, seqno);
      if (lookup.status === "Archived") {
        // As a node reads its ledger files: the entries it has written, from where the lookup says.
        const from = lookup.from;
        const entries = node.disk
          .written()
          .entries.filter((e) => e.seqno >= from)
          .map((e) => decodeEntry(e.data));
        lookup = state.receiptFromEntries(view, seqno, entries);
        this.stats.receiptsRebuilt++;
      }
      if (lookup.status !== "ok") fail(`${node.id} gives no receipt for committed ${txid}: ${lookup.status}`);
      const json = verifyJsonReceipt(lookup.json, this.serviceCertPem);
      if (!json.ok)
        fail(`${node.id}'s JSON receipt for ${txid} does not verify: ${json.check}: ${json.message}`);
      const cose = verifyCoseReceipt(lookup.cose, this.serviceCertPem);
      if (!cose.ok)
        fail(`${node.id}'s COSE receipt for ${txid} does not verify: ${cose.check}: ${cose.message}`);
      const leaf = lookup.json.leaf_components;
      if (
        json.txid !== txid ||
        cose.txid !== txid ||
        json.root !== cose.root ||
        leaf.write_set_digest !== record.writeSetDigest ||
        leaf.claims_digest !== record.claimsDigest
      ) {
        fail(`${node.id}'s receipt for ${txid} does not prove the committed ${record.label}`);
      }
      this.stats.receiptsVerified++;
    }
  }
}
