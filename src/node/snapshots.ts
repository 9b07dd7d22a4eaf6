import { mkdirSync, readFileSync } from "node:fs";
import type { Logger } from "pino";
import { toHex } from "../crypto/index.ts";
import {
  type DecodedEntry,
  decodeSnapshot,
  jsonBytes,
  type LedgerSecrets,
  listSnapshots,
  parseJsonBytes,
  SINGLETON_KEY,
  snapshotDigest,
  Tables,
  writeSnapshotFile,
} from "../ledger/index.ts";
import type { DecodedSnapshot, LedgerState } from "./ledger-state.ts";

/** What the snapshot evidence entry records: the snapshot's seqno and the digest of its file. */
interface SnapshotEvidence {
  version: number;
  hash: string;
}

interface PendingSnapshot {
  seqno: number;
  evidenceSeqno: number;
  bytes: Uint8Array;
}

function evidenceIn(entry: DecodedEntry): SnapshotEvidence | undefined {
  const value = entry.publicWriteSet.find((m) => m.name === Tables.snapshotEvidence)?.updates[0]?.value;
  if (!value) return undefined;
  const parsed = parseJsonBytes<SnapshotEvidence>(value);
  return Number.isSafeInteger(parsed.version) && typeof parsed.hash === "string" ? parsed : undefined;
}

/**
 * Snapshot files of one node. The primary takes one at a signature every `txInterval`
 * transactions and records its digest in the next entry (the evidence); a backup that applies the
 * evidence entry encodes the same snapshot from its own state and checks the digest, so every node
 * keeps byte-identical snapshots and a divergent store shows up in the log. A snapshot is written
 * once its evidence commits; the node then lets consensus forget the entries before the older of
 * the two snapshots it keeps.
 */
export class Snapshots {
  private pending: PendingSnapshot | undefined;
  private written: number[] = [];
  /** Members asked for a snapshot (`trigger_snapshot`): take one at the next signature. */
  private requested = false;

  constructor(
    readonly dir: string,
    private readonly state: LedgerState,
    private readonly txInterval: number,
    private readonly log: Logger,
    /** The newest snapshot this node holds (it restarted from it), 0 if none. */
    private lastSeqno: number,
  ) {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    if (lastSeqno > 0) this.written.push(lastSeqno);
  }

  /** Primary: after the signature at `seqno`, takes a snapshot there when one is due. */
  afterSignature(seqno: number): void {
    if (this.pending || (!this.requested && seqno - this.lastSeqno < this.txInterval)) return;
    this.requested = false;
    const bytes = this.state.encodeSnapshotAt(seqno);
    const tx = this.state.store.begin();
    const evidence: SnapshotEvidence = { version: seqno, hash: toHex(snapshotDigest(bytes)) };
    tx.map(Tables.snapshotEvidence).set(SINGLETON_KEY, jsonBytes(evidence));
    const outcome = this.state.commitTx(tx);
    if (!outcome.ok || outcome.seqno === null) throw new Error("snapshot evidence did not commit");
    this.pending = { seqno, evidenceSeqno: outcome.seqno, bytes };
    this.lastSeqno = seqno;
  }

  /** Takes a snapshot at the next signature, whatever the interval. */
  request(): void {
    this.requested = true;
  }

  /** Backup: an applied entry that records a snapshot gets the same snapshot made here. */
  afterReplicated(entry: DecodedEntry): void {
    const evidence = evidenceIn(entry);
    if (!evidence) return;
    let bytes: Uint8Array;
    try {
      bytes = this.state.encodeSnapshotAt(evidence.version);
    } catch (e) {
      this.log.warn({ seqno: evidence.version, err: e }, "cannot take the snapshot the primary took");
      return;
    }
    if (toHex(snapshotDigest(bytes)) !== evidence.hash) {
      this.log.error(
        { seqno: evidence.version, evidenceSeqno: entry.seqno },
        "this node's state at a snapshot differs from the primary's: not writing it",
      );
      return;
    }
    this.pending = { seqno: evidence.version, evidenceSeqno: entry.seqno, bytes };
    this.lastSeqno = evidence.version;
  }

  /** Entries after `seqno` were rolled back: a snapshot waiting for evidence there is dropped. */
  rolledBack(seqno: number): void {
    if (this.pending && this.pending.evidenceSeqno > seqno) this.pending = undefined;
  }

  /**
   * The commit point moved: writes the snapshot whose evidence it covers. Resolves to the seqno
   * consensus may compact its log to (the older snapshot kept), or undefined.
   */
  async committed(commit: number): Promise<number | undefined> {
    const pending = this.pending;
    if (!pending || pending.evidenceSeqno > commit) return undefined;
    this.pending = undefined;
    const path = await writeSnapshotFile(this.dir, pending.seqno, pending.evidenceSeqno, pending.bytes);
    this.log.info({ path, seqno: pending.seqno }, "wrote a snapshot");
    this.written = [...this.written, pending.seqno].slice(-2);
    return this.written.length === 2 ? this.written[0] : undefined;
  }

  /** A received snapshot was installed and written: it is the newest this node has. */
  installed(seqno: number): void {
    this.pending = undefined;
    this.lastSeqno = seqno;
    this.written = [seqno];
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
