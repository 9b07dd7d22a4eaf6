import type { Entry, HardState, PersistedLog, SnapshotPoint } from "../../src/consensus/index.ts";
import type { Prng } from "./prng.ts";

export interface StoredSnapshot {
  point: SnapshotPoint;
  state: ReadonlyMap<string, string>;
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
  log: PersistedLog;
}

/**
 * One node's simulated disk. The hard state and snapshots are written atomically and durably
 * (write a new file, fsync, rename). Ledger writes (appends and truncations) go to an unsynced
 * tail first; `sync` makes them durable. A crash keeps a random prefix of the unsynced writes,
 * and the first write it loses may be torn: partly on disk, detected and cut off on recovery,
 * as the ledger reader does with a frame whose checksum fails.
 */
export class SimDisk {
  private hard: HardState | undefined;
  private snap: StoredSnapshot | undefined;
  private synced: Write[] = [];
  private unsynced: Write[] = [];
  readonly stats = { syncs: 0, lostWrites: 0, tornWrites: 0 };

  /** `base` is where the log starts with no snapshot: the initial configuration, or none. */
  constructor(readonly base: SnapshotPoint) {}

  get hardState(): HardState | undefined {
    return this.hard;
  }

  get snapshot(): StoredSnapshot | undefined {
    return this.snap;
  }

  get hasUnsynced(): boolean {
    return this.unsynced.length > 0;
  }

  writeHardState(state: HardState): void {
    this.hard = { ...state };
  }

  /**
   * Writes a snapshot durably. With `dropLog` the node also discards its whole ledger (a snapshot
   * from the primary replaced a log that disagreed with it).
   */
  writeSnapshot(snapshot: StoredSnapshot, dropLog: boolean): void {
    this.snap = {
      point: { ...snapshot.point, config: [...snapshot.point.config] },
      state: new Map(snapshot.state),
    };
    if (dropLog) {
      this.synced = [];
      this.unsynced = [];
    }
  }

  append(entries: readonly Entry[]): void {
    if (entries.length > 0) this.unsynced.push({ kind: "entries", entries: [...entries] });
  }

  truncate(after: number): void {
    this.unsynced.push({ kind: "truncate", after });
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

  /** Reads everything back after a restart, cutting off a torn tail. */
  recover(): Recovered {
    const tornAt = this.synced.findIndex((w) => w.kind === "torn");
    if (tornAt >= 0) this.synced = this.synced.slice(0, tornAt);
    const start = this.snap?.point ?? this.base;
    let log: Entry[] = [];
    let commitSeqno = 0;
    for (const write of this.synced) {
      if (write.kind === "commit") commitSeqno = Math.max(commitSeqno, write.seqno);
      if (write.kind === "truncate") {
        log = log.filter((e) => e.seqno <= write.after);
        continue;
      }
      if (write.kind !== "entries") continue;
      for (const entry of write.entries) {
        const last = log.at(-1);
        if (last && entry.seqno !== last.seqno + 1) {
          throw new DiskCorruption(`ledger write of seqno ${entry.seqno} after ${last.seqno}`);
        }
        log.push(entry);
      }
    }
    const entries = log.filter((e) => e.seqno > start.seqno);
    if (entries.length > 0 && entries[0]!.seqno !== start.seqno + 1) {
      throw new DiskCorruption(`ledger resumes at ${entries[0]!.seqno}, after a snapshot at ${start.seqno}`);
    }
    return {
      hardState: this.hard ? { ...this.hard } : undefined,
      commitSeqno,
      snapshot: this.snap,
      log: { start: { ...start, config: [...start.config] }, entries },
    };
  }
}
