import { mkdirSync, readFileSync } from "node:fs";
import type { Logger } from "pino";
import { equalBytes, toHex } from "../crypto/index.ts";
import type { MapWriteSet } from "../kv/index.ts";
import type { DecodedSnapshot, EncodedSnapshot, LedgerState } from "../ledger/index.ts";
import {
  type DecodedEntry,
  decodeSnapshot,
  jsonBytes,
  type LedgerSecrets,
  listSnapshots,
  NotPrimaryError,
  parseJsonBytes,
  SINGLETON_KEY,
  SnapshotEncoder,
  type SnapshotSource,
  snapshotDigest,
  Tables,
  utf8,
  writeSnapshotFile,
} from "../ledger/index.ts";
import { SNAPSHOT_SLICE_MS, SnapshotJob } from "./snapshot-job.ts";

/** What the snapshot evidence entry records: the snapshot's seqno and the digest of its file. */
interface SnapshotEvidence {
  version: number;
  hash: string;
}

/**
 * The key under which the primary announces a snapshot it has begun, in the evidence table: the
 * entry right after the snapshot's signature entry records `{version}`, so every backup begins the
 * same snapshot from its own state at once, while the entry is still in its store's history. The
 * digest follows later under the singleton key (the evidence proper), once the primary's slices
 * are done.
 */
export const SNAPSHOT_BEGUN_KEY = utf8("begun");

/**
 * A snapshot is due once at least `SNAPSHOT_TX_PER_KEY` transactions per key of the previous
 * snapshot have passed since it (and never sooner than `snapshots.txInterval`). Encoding costs
 * about the same per key, c, so with K keys at the last snapshot and g new keys per transaction
 * the next, of K + g*K keys after K transactions, costs each of those writes c*(1 + g): constant
 * however large the state grows (c for overwrites, 2c for a stream of inserts), where a fixed
 * interval costs c*K/interval, growing without bound. The snapshot bytes written to disk are then
 * about (1 + g) keys' worth per write, no more than the ledger itself grows by. The previous
 * snapshot's count, not the store's now, sets the interval: with the current count a workload
 * adding a key per transaction or more would never be due. BENCHMARKS.md, "Session 7: snapshots",
 * has the measurement.
 */
export const SNAPSHOT_TX_PER_KEY = 1;

interface PendingSnapshot {
  seqno: number;
  evidenceSeqno: number;
  /** The file, once its job is done; undefined if it was abandoned or did not match. */
  bytes: Promise<Uint8Array | undefined>;
  job?: SnapshotJob;
}

function evidenceTableWrites(entry: DecodedEntry): MapWriteSet | undefined {
  return entry.publicWriteSet.find((m) => m.name === Tables.snapshotEvidence);
}

function evidenceIn(entry: DecodedEntry): SnapshotEvidence | undefined {
  const value = evidenceTableWrites(entry)?.updates.find((u) => equalBytes(u.key, SINGLETON_KEY))?.value;
  if (!value) return undefined;
  const parsed = parseJsonBytes<SnapshotEvidence>(value);
  return Number.isSafeInteger(parsed.version) && typeof parsed.hash === "string" ? parsed : undefined;
}

function begunIn(entry: DecodedEntry): number | undefined {
  const value = evidenceTableWrites(entry)?.updates.find((u) => equalBytes(u.key, SNAPSHOT_BEGUN_KEY))?.value;
  if (!value) return undefined;
  const { version } = parseJsonBytes<{ version?: unknown }>(value);
  return typeof version === "number" && Number.isSafeInteger(version) ? version : undefined;
}

/**
 * Snapshot files of one node. At a signature where one is due (see SNAPSHOT_TX_PER_KEY) or that
 * members asked for, the primary begins a snapshot: it records `{version}` under
 * SNAPSHOT_BEGUN_KEY in the next entry and encodes the store as of the signature, in slices
 * between other work (SnapshotJob), from an immutable version of the store. When done it records
 * the file's digest (the evidence). A backup that applies the announcement begins the same
 * snapshot from its own state, and checks its digest against the evidence, so every node keeps
 * byte-identical snapshots and a divergent store shows up in the log. A snapshot is written once
 * its evidence commits; the node then lets consensus forget the entries before the older of the
 * two snapshots it keeps. A rollback past the announcement (or past the snapshot) abandons it.
 */
export class Snapshots {
  private pending: PendingSnapshot | undefined;
  /** The snapshot this node is encoding and has no evidence for yet. */
  private job: SnapshotJob | undefined;
  /** Where the job's announcement is in the ledger (a rollback before it abandons the job). */
  private jobBegunAt = 0;
  private written: number[] = [];
  /** Members asked for a snapshot (`trigger_snapshot`): take one at the next signature. */
  private requested = false;
  /** Keys in the store at the newest snapshot (see SNAPSHOT_TX_PER_KEY). */
  private lastKeys: number;

  constructor(
    readonly dir: string,
    private readonly state: LedgerState,
    private readonly txInterval: number,
    private readonly log: Logger,
    /** The newest snapshot this node holds (it restarted from it), 0 if none. */
    private lastSeqno: number,
    private readonly sliceMs = SNAPSHOT_SLICE_MS,
  ) {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    if (lastSeqno > 0) this.written.push(lastSeqno);
    // A node that restarted from a snapshot has replayed the ledger after it: close enough.
    this.lastKeys = lastSeqno > 0 ? state.store.versionAt().keyCount : 0;
  }

  /** Whether a snapshot is due at the signature `seqno`, by the rule above. */
  isDue(seqno: number): boolean {
    if (this.requested) return true;
    const since = seqno - this.lastSeqno;
    return since >= this.txInterval && since >= SNAPSHOT_TX_PER_KEY * this.lastKeys;
  }

  /** Primary: after the signature at `seqno`, begins a snapshot there when one is due. */
  afterSignature(seqno: number): void {
    // One at a time: a job still running (begun here, or by the previous primary) goes first.
    if (this.pending || this.job?.active) return;
    if (!this.isDue(seqno)) return;
    const store = this.state.store;
    this.requested = false;
    const source = this.state.snapshotSourceAt(seqno);
    const encoder = new SnapshotEncoder(source, this.state.secrets);
    const tx = store.begin();
    tx.map(Tables.snapshotEvidence).set(SNAPSHOT_BEGUN_KEY, jsonBytes({ version: seqno }));
    const outcome = this.state.commitTx(tx);
    if (!outcome.ok || outcome.seqno === null) throw new Error("snapshot announcement did not commit");
    const job = this.begin(seqno, source.view, source.store.keyCount, outcome.seqno, encoder);
    void job.result.then(
      (encoded) => this.primaryEncoded(job, encoded),
      (e) => this.failed(job, e),
    );
  }

  /** Takes a snapshot at the next signature, whatever the interval. */
  request(): void {
    this.requested = true;
  }

  private begin(
    seqno: number,
    view: number,
    keys: number,
    begunAt: number,
    encoder: SnapshotEncoder,
  ): SnapshotJob {
    this.job?.abort();
    const job = new SnapshotJob(seqno, view, keys, encoder, this.sliceMs);
    this.job = job;
    this.jobBegunAt = begunAt;
    return job;
  }

  private failed(job: SnapshotJob, error: unknown): void {
    if (this.job === job) this.job = undefined;
    this.log.error({ seqno: job.seqno, err: error }, "could not encode a snapshot");
  }

  /** Primary: the slices are done; records the digest, if the snapshot's entry still stands. */
  private primaryEncoded(job: SnapshotJob, encoded: EncodedSnapshot | undefined): void {
    if (this.job !== job) return;
    this.job = undefined;
    if (!encoded || !this.stillStands(job)) return;
    const tx = this.state.store.begin();
    const evidence: SnapshotEvidence = { version: job.seqno, hash: toHex(encoded.digest) };
    tx.map(Tables.snapshotEvidence).set(SINGLETON_KEY, jsonBytes(evidence));
    let outcome: ReturnType<LedgerState["commitTx"]>;
    try {
      outcome = this.state.commitTx(tx);
    } catch (e) {
      // No longer primary: the evidence cannot be recorded, so this snapshot is dropped.
      if (e instanceof NotPrimaryError) return;
      throw e;
    }
    if (!outcome.ok || outcome.seqno === null) throw new Error("snapshot evidence did not commit");
    this.pending = { seqno: job.seqno, evidenceSeqno: outcome.seqno, bytes: Promise.resolve(encoded.bytes) };
    this.lastSeqno = job.seqno;
    this.lastKeys = job.keys;
  }

  /** The entry the snapshot was taken at is still in this node's ledger. */
  private stillStands(job: SnapshotJob): boolean {
    return job.seqno <= this.state.lastSeqno && this.state.viewOf(job.seqno) === job.view;
  }

  /**
   * Backup: an applied entry that announces a snapshot begins the same one here; one that records
   * a snapshot's evidence checks this node's file against it.
   */
  afterReplicated(entry: DecodedEntry): void {
    const begun = begunIn(entry);
    if (begun !== undefined) this.begunByPrimary(begun, entry.seqno);
    const evidence = evidenceIn(entry);
    if (evidence) this.evidenceFromPrimary(evidence, entry.seqno);
  }

  private begunByPrimary(seqno: number, begunAt: number): void {
    let encoder: SnapshotEncoder;
    let source: SnapshotSource;
    try {
      source = this.state.snapshotSourceAt(seqno);
      encoder = new SnapshotEncoder(source, this.state.secrets);
    } catch (e) {
      this.log.warn({ seqno, err: e }, "cannot begin the snapshot the primary began");
      return;
    }
    const job = this.begin(seqno, source.view, source.store.keyCount, begunAt, encoder);
    job.result.catch((e) => this.failed(job, e));
  }

  private evidenceFromPrimary(evidence: SnapshotEvidence, evidenceSeqno: number): void {
    const job = this.job?.seqno === evidence.version ? this.job : undefined;
    if (!job) {
      this.log.warn(
        { seqno: evidence.version, evidenceSeqno },
        "no snapshot begun here for this evidence (restarted or installed since): not writing it",
      );
      return;
    }
    this.job = undefined;
    // A backup whose commit point lags may meet a second snapshot before the first commits.
    this.pending?.job?.abort();
    const bytes = job.result.then(
      (encoded) => {
        if (!encoded) return undefined;
        if (toHex(encoded.digest) === evidence.hash) return encoded.bytes;
        this.log.error(
          { seqno: evidence.version, evidenceSeqno },
          "this node's state at a snapshot differs from the primary's: not writing it",
        );
        return undefined;
      },
      () => undefined,
    );
    this.pending = { seqno: evidence.version, evidenceSeqno, bytes, job };
    this.lastSeqno = evidence.version;
    this.lastKeys = job.keys;
  }

  /**
   * Entries after `seqno` were rolled back: a snapshot whose announcement or evidence was among
   * them is abandoned (a new primary knows nothing of it).
   */
  rolledBack(seqno: number): void {
    if (this.job && this.jobBegunAt > seqno) {
      this.job.abort();
      this.job = undefined;
    }
    if (this.pending && this.pending.evidenceSeqno > seqno) {
      this.pending.job?.abort();
      this.pending = undefined;
    }
  }

  /**
   * The commit point moved: writes the snapshot whose evidence it covers (waiting for its last
   * slices if need be). Resolves to the seqno consensus may compact its log to (the older
   * snapshot kept), or undefined.
   */
  async committed(commit: number): Promise<number | undefined> {
    const pending = this.pending;
    if (!pending || pending.evidenceSeqno > commit) return undefined;
    this.pending = undefined;
    const bytes = await pending.bytes;
    if (!bytes) return undefined;
    const path = await writeSnapshotFile(this.dir, pending.seqno, pending.evidenceSeqno, bytes);
    this.log.info({ path, seqno: pending.seqno }, "wrote a snapshot");
    this.written = [...this.written, pending.seqno].slice(-2);
    return this.written.length === 2 ? this.written[0] : undefined;
  }

  /** A received snapshot was installed and written: it is the newest this node has. */
  installed(seqno: number): void {
    this.stop();
    this.pending?.job?.abort();
    this.pending = undefined;
    this.lastSeqno = seqno;
    this.lastKeys = this.state.store.versionAt().keyCount;
    this.written = [seqno];
  }

  /**
   * Abandons a snapshot still waiting for its evidence (shutdown). One whose evidence is in is
   * finished and written if the evidence commits.
   */
  stop(): void {
    this.job?.abort();
    this.job = undefined;
  }

  /** The file of the snapshot at `seqno`, to send to a node that needs it. */
  async read(seqno: number): Promise<{ bytes: Uint8Array; evidenceSeqno: number } | undefined> {
    const found = (await listSnapshots(this.dir)).find((s) => s.seqno === seqno);
    if (!found) return undefined;
    return { bytes: new Uint8Array(readFileSync(found.path)), evidenceSeqno: found.evidenceSeqno };
  }
}

/**
 * The newest snapshot this node can start from. With the whole ledger, its digest must match its
 * evidence entry. A ledger that starts after a snapshot needs exactly that snapshot: its anchor's
 * signatures are checked when the state is restored from it.
 */
export async function loadUsableSnapshot(
  dir: string,
  entries: DecodedEntry[],
  ledgerStart: number,
  secrets: LedgerSecrets,
  log: Logger,
): Promise<DecodedSnapshot | undefined> {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const first = entries[0]?.seqno ?? ledgerStart;
  for (const candidate of await listSnapshots(dir)) {
    const bytes = new Uint8Array(readFileSync(candidate.path));
    const evidenceEntry = entries[candidate.evidenceSeqno - first];
    const evidence = evidenceEntry ? evidenceIn(evidenceEntry) : undefined;
    if (evidence) {
      if (evidence.version !== candidate.seqno || evidence.hash !== toHex(snapshotDigest(bytes))) {
        log.warn({ path: candidate.path }, "snapshot does not match its evidence in the ledger; ignored");
        continue;
      }
    } else if (candidate.seqno !== ledgerStart - 1) {
      log.warn({ path: candidate.path }, "snapshot has no evidence in the ledger; ignored");
      continue;
    }
    return decodeSnapshot(bytes, secrets);
  }
  return undefined;
}
