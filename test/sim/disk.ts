import type { Entry, HardState, SnapshotPoint } from "../../src/consensus/index.ts";
import type { ReplicaStorage } from "../../src/node/replica.ts";
import type { Prng } from "./prng.ts";

/** A snapshot file: the bytes `LedgerState.encodeSnapshotAt` made, and where consensus stands there. */
export interface StoredSnapshot {
  point: SnapshotPoint;
  bytes: Uint8Array;
}

type Write =
  | { kind: "entries"; entries: Entry[] }
  | { kind: "truncate"; after: number }
  | { kind: "commit"; seqno: number }
  | { kind: "torn" };

export class DiskCorruption extends Error {
  override name = "DiskCorruption";
}

export interface Recovered {
  hardState: HardState | undefined;
  /** The last commit point recorded before the crash (it may lag: it is written lazily). */
  commitSeqno: number;
  snapshot: StoredSnapshot | undefined;
  /** Where the ledger starts: 1, or just after a snapshot that replaced it. */
  ledgerStart: number;
  /** The ledger's entries (their data is the entry frame), contiguous from `ledgerStart`. */
  entries: Entry[];
}

/**
 * One node's simulated disk. The hard state and snapshots are written atomically and durably
 * (write a new file, fsync, rename). Ledger writes (appends and truncations) go to an unsynced
 * tail first; `sync` makes them durable. A crash keeps a random prefix of the unsynced writes,
 * and the first write it loses may be torn: partly on disk, detected and cut off on recovery,
 * as the ledger reader does with a frame whose checksum fails. Like Coco's ledger directory, the
 * ledger keeps every entry from the start even when consensus compacts its log to a snapshot;
 * only a snapshot received in place of a diverging ledger restarts it.
 */
export class SimDisk {
  private hard: HardState | undefined;
  private snap: StoredSnapshot | undefined;
  private start = 1;
  /** The last seqno written, synced or not (until a crash loses some of it). */
  private last = 0;
  private synced: Write[] = [];
  private unsynced: Write[] = [];
  readonly stats = { syncs: 0, lostWrites: 0, tornWrites: 0 };

  get hardState(): HardState | undefined {
    return this.hard;
  }

  get snapshot(): StoredSnapshot | undefined {
    return this.snap;
  }

  get lastSeqno(): number {
    return this.last;
  }

  get hasUnsynced(): boolean {
    return this.unsynced.length > 0;
  }

  writeHardState(state: HardState): void {
    this.hard = { ...state };
  }

  /**
   * Writes a snapshot durably. With `dropLog` the node also discards its whole ledger, which
   * restarts after the snapshot (a snapshot from the primary replaced a log that disagreed).
   */
  writeSnapshot(snapshot: StoredSnapshot, dropLog: boolean): void {
    this.snap = { point: { ...snapshot.point, config: [...snapshot.point.config] }, bytes: snapshot.bytes };
    if (dropLog) {
      this.synced = [];
      this.unsynced = [];
      this.start = snapshot.point.seqno + 1;
      this.last = snapshot.point.seqno;
    }
  }

  append(entries: readonly Entry[]): void {
    if (entries.length === 0) return;
    this.unsynced.push({ kind: "entries", entries: [...entries] });
    this.last = entries.at(-1)!.seqno;
  }

  truncate(after: number): void {
    this.unsynced.push({ kind: "truncate", after });
    this.last = Math.min(this.last, after);
  }

  /** Notes the commit point, as Coco's ledger does by marking committed chunks. */
  recordCommit(seqno: number): void {
    this.unsynced.push({ kind: "commit", seqno });
  }

  sync(): void {
    this.stats.syncs++;
    this.synced.push(...this.unsynced);
    this.unsynced = [];
  }

  crash(prng: Prng): void {
    const kept = prng.int(this.unsynced.length + 1);
    this.synced.push(...this.unsynced.slice(0, kept));
    const torn = this.unsynced[kept];
    if (torn && prng.chance(0.5)) {
      if (torn.kind === "entries" && torn.entries.length > 1) {
        this.synced.push({ kind: "entries", entries: torn.entries.slice(0, prng.int(torn.entries.length)) });
      }
      this.synced.push({ kind: "torn" });
      this.stats.tornWrites++;
    }
    this.stats.lostWrites += this.unsynced.length - kept;
    this.unsynced = [];
  }

  /** Reads everything back after a restart, cutting off a torn tail for good. */
  recover(): Recovered {
    const tornAt = this.synced.findIndex((w) => w.kind === "torn");
    if (tornAt >= 0) this.synced = this.synced.slice(0, tornAt);
    const recovered = this.read(this.synced);
    this.last = recovered.entries.at(-1)?.seqno ?? recovered.ledgerStart - 1;
    return recovered;
  }

  /** The ledger as written so far, synced or not (what a running node has): for checks. */
  written(): Recovered {
    const writes = [...this.synced, ...this.unsynced];
    const tornAt = writes.findIndex((w) => w.kind === "torn");
    return this.read(tornAt >= 0 ? writes.slice(0, tornAt) : writes);
  }

  private read(writes: readonly Write[]): Recovered {
    let entries: Entry[] = [];
    let commitSeqno = 0;
    for (const write of writes) {
      if (write.kind === "commit") commitSeqno = Math.max(commitSeqno, write.seqno);
      if (write.kind === "truncate") {
        entries = entries.filter((e) => e.seqno <= write.after);
        continue;
      }
      if (write.kind !== "entries") continue;
      for (const entry of write.entries) {
        const expected = (entries.at(-1)?.seqno ?? this.start - 1) + 1;
        if (entry.seqno !== expected) {
          throw new DiskCorruption(`ledger write of seqno ${entry.seqno} where ${expected} was next`);
        }
        entries.push(entry);
      }
    }
    return {
      hardState: this.hard ? { ...this.hard } : undefined,
      commitSeqno,
      snapshot: this.snap,
      ledgerStart: this.start,
      entries,
    };
  }
}

/**
 * The replica's storage on a simulated disk, what `LedgerFiles` is to a real node, for one run of
 * a node (a restart makes a new one). Appends and truncations are unsynced disk writes; `sync`
 * makes them durable and then reports the last durable seqno, as `LedgerFiles` does after its
 * fdatasync. The disk keeps the raft entry it was handed (its view and configuration, for the
 * checks), after checking that it is the frame the replica writes.
 */
export class SimLedger implements ReplicaStorage {
  private readonly listeners: Array<(durableSeqno: number) => void> = [];
  private durable: number;

  constructor(
    private readonly disk: SimDisk,
    /** Consensus's entry at a seqno (the replica persists only entries consensus holds). */
    private readonly entryAt: (seqno: number) => Entry | undefined,
    /** Called after each write: the node schedules a sync. */
    private readonly wrote: () => void,
  ) {
    this.durable = disk.lastSeqno;
  }

  append(seqno: number, frame: Uint8Array, isSignature: boolean): void {
    const entry = this.entryAt(seqno);
    if (entry?.data !== frame || entry.isSignature !== isSignature) {
      throw new Error(`the replica writes a frame at seqno ${seqno} that is not consensus's entry there`);
    }
    const expected = this.disk.lastSeqno + 1;
    if (seqno !== expected) throw new Error(`ledger append of seqno ${seqno} where ${expected} was next`);
    this.disk.append([entry]);
    this.wrote();
  }

  truncate(afterSeqno: number): Promise<void> {
    this.disk.truncate(afterSeqno);
    this.durable = Math.min(this.durable, afterSeqno);
    this.wrote();
    return Promise.resolve();
  }

  onDurable(listener: (durableSeqno: number) => void): void {
    this.listeners.push(listener);
  }

  /** A snapshot from the primary replaced the ledger, which restarts after it (`restartAt`). */
  restartAfter(snapshot: StoredSnapshot): void {
    this.disk.writeSnapshot(snapshot, true);
    this.durable = snapshot.point.seqno;
  }

  /** The sync a write asked for: everything written so far is durable. */
  sync(): void {
    this.disk.sync();
    const last = this.disk.lastSeqno;
    if (last <= this.durable) return;
    this.durable = last;
    for (const listener of this.listeners) listener(last);
  }
}
