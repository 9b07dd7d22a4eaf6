import { checkKey, compareUtf8, fromBinary, toBinary, validKey } from "./bytes.ts";
import { invariant, KvError } from "./errors.ts";
import { DEFAULT_CONFLICT_WINDOW } from "./limits.ts";
import { validateMapName } from "./names.ts";
import { readsConflict, type WrittenKeys } from "./readset.ts";
import { parseSnapshot, type StoreSnapshot, StoreVersion, takeSnapshot } from "./snapshot.ts";
import { get, insert, remove, scan } from "./tree.ts";
import { type MapsRoot, type StateRef, Transaction, type Tx } from "./tx.ts";
import { type InternalWriteSet, parseWriteSet, type WriteSet } from "./writeset.ts";

export type CommitResult =
  | { ok: true; seqno: number; writeSet: WriteSet }
  | { ok: true; seqno: null; readVersion: number }
  | { ok: false; reason: "conflict" };

export interface StoreOptions {
  /** Max committed versions an open transaction may lag and still be checked; default 10000. */
  conflictWindow?: number;
}

/** Keys one version wrote, and the id of the state it was applied to (to detect rewritten history). */
interface LogEntry {
  readonly parentId: number;
  readonly written: WrittenKeys;
}

/**
 * The in-memory, versioned KV store. Each version is an immutable root of persistent trees, so
 * snapshots, rollback points and open transactions all share structure.
 */
export class Store {
  private current: StateRef;
  /** States from compactedVersion to version, one per version: the rollback points. */
  private history: StateRef[];
  /** Written keys for versions logStart..version: only what open transactions may need. */
  private log: LogEntry[] = [];
  private logStart = 1;
  /** State ids are never reused, so a rolled-back-and-recommitted version gets a new one. */
  private nextId = 1;
  /** Open transactions counted by the version they started at. */
  private readonly openStarts = new Map<number, number>();
  private readonly conflictWindow: number;

  constructor(options: StoreOptions = {}) {
    const window = options.conflictWindow ?? DEFAULT_CONFLICT_WINDOW;
    if (!Number.isSafeInteger(window) || window < 1) {
      throw new KvError(`conflictWindow must be a positive integer, got ${window}`);
    }
    this.conflictWindow = window;
    this.current = { version: 0, id: 0, maps: null };
    this.history = [this.current];
  }

  get version(): number {
    return this.current.version;
  }

  get compactedVersion(): number {
    return this.history[0]!.version;
  }

  begin(): Tx {
    const start = this.current.version;
    this.openStarts.set(start, (this.openStarts.get(start) ?? 0) + 1);
    return new Transaction(this, this.current, () => {
      const left = (this.openStarts.get(start) ?? 1) - 1;
      if (left === 0) this.openStarts.delete(start);
      else this.openStarts.set(start, left);
    });
  }

  /**
   * Closes `tx`. A read-only transaction always succeeds without a seqno (it read one consistent
   * snapshot). A writing one gets the next seqno unless a version committed after its snapshot
   * wrote something it read, its snapshot was rolled back, or it is too old to check.
   */
  commit(tx: Tx): CommitResult {
    if (!(tx instanceof Transaction) || tx.owner !== this) {
      throw new KvError("commit: the transaction was not begun on this store");
    }
    tx.close();
    if (tx.isReadOnly) return { ok: true, seqno: null, readVersion: tx.startVersion };
    if (!this.stillValid(tx)) return { ok: false, reason: "conflict" };
    this.advance(tx.internalWriteSet());
    return { ok: true, seqno: this.current.version, writeSet: tx.writeSet() };
  }

  /** Replays a write set committed elsewhere (ledger replay, a backup following the primary). */
  apply(seqno: number, writeSet: WriteSet): void {
    const expected = this.current.version + 1;
    if (seqno !== expected) {
      throw new KvError(`apply: seqno must be ${expected} (the version after ${expected - 1}), got ${seqno}`);
    }
    this.advance(parseWriteSet(writeSet));
  }

  rollback(toSeqno: number): void {
    this.checkSeqno("rollback", toSeqno);
    if (toSeqno < this.compactedVersion) {
      throw new KvError(`rollback: ${toSeqno} is below the compacted version ${this.compactedVersion}`);
    }
    if (toSeqno === this.current.version) return;
    this.history.length = toSeqno - this.compactedVersion + 1;
    this.current = this.history[this.history.length - 1]!;
    this.log.length = Math.max(0, Math.min(this.log.length, toSeqno - this.logStart + 1));
    this.checkVersions();
    invariant(
      this.current.version === toSeqno,
      () => `rolled back to ${this.current.version}, not ${toSeqno}`,
    );
  }

  /** Versions below `seqno` can no longer be rolled back to. Compacting lower than before is a no-op. */
  compact(seqno: number): void {
    this.checkSeqno("compact", seqno);
    if (seqno <= this.compactedVersion) return;
    this.history.splice(0, seqno - this.compactedVersion);
    invariant(this.compactedVersion === seqno, () => `compacted to ${this.compactedVersion}, not ${seqno}`);
  }

  /** Maps that have held keys at the current version (including ones since emptied), by UTF-8 name. */
  mapNames(): string[] {
    return scan(this.current.maps, "", null, Number.POSITIVE_INFINITY)
      .map((n) => n.key)
      .sort(compareUtf8);
  }

  /** The whole store at `version` (the current one by default; any rollback point back to the compacted version). */
  snapshot(version: number = this.current.version): StoreSnapshot {
    const state = this.stateAt(version);
    return takeSnapshot(state.version, state.maps);
  }

  /** The store at `version`, immutable and readable later (see StoreVersion); O(number of maps). */
  versionAt(version: number = this.current.version): StoreVersion {
    const state = this.stateAt(version);
    return new StoreVersion(state.version, state.maps);
  }

  private stateAt(version: number): StateRef {
    const state = this.history[version - this.compactedVersion];
    if (!state || state.version !== version) {
      throw new KvError(
        `no snapshot at version ${version}: the store holds versions ${this.compactedVersion} to ${this.version}`,
      );
    }
    return state;
  }

  /** A store at the snapshot's version, which is also its compacted version. */
  static fromSnapshot(snap: StoreSnapshot): Store {
    const { version, maps } = parseSnapshot(snap);
    const store = new Store();
    store.current = { version, id: 0, maps };
    store.history = [store.current];
    return store;
  }

  /** The committed value at the current version, outside any transaction. */
  read(name: string, key: Uint8Array): Uint8Array | undefined {
    return valueIn(this.current.maps, name, key);
  }

  /**
   * The value of `key` in map `name` as it was at `version`, any rollback point from the
   * compacted version to the current one (a KvError outside that window). For answers that
   * must come from a settled version, e.g. the committed one, not from what is applied since.
   */
  readAt(version: number, name: string, key: Uint8Array): Uint8Array | undefined {
    return valueIn(this.stateAt(version).maps, name, key);
  }

  /**
   * Stands for map `name`'s content at the current version: the same object for as long as the
   * map is unchanged, a different one once any key of it is written or removed (null while it
   * holds nothing). For caches of values derived from a map, e.g. who a certificate names.
   */
  mapState(name: string): object | null {
    return get(this.current.maps, name)?.val ?? null;
  }

  private checkSeqno(op: string, seqno: number): void {
    if (!Number.isSafeInteger(seqno) || seqno < 0) {
      throw new KvError(`${op}: seqno must be a non-negative integer, got ${seqno}`);
    }
    if (seqno > this.current.version) {
      throw new KvError(`${op}: ${seqno} is after the current version ${this.current.version}`);
    }
  }

  /** Whether `tx`'s reads are still what the current state would give (the OCC check). */
  private stillValid(tx: Transaction): boolean {
    // Common case: nothing committed since the transaction began.
    if (tx.baseId === this.current.id) return true;
    const first = tx.startVersion + 1;
    const i0 = first - this.logStart;
    if (first > this.current.version || i0 < 0 || i0 >= this.log.length) return false;
    // The version after the snapshot must have been applied on top of that very snapshot.
    if (this.log[i0]!.parentId !== tx.baseId) return false;
    for (let i = i0; i < this.log.length; i++) {
      if (readsConflict(tx.reads, this.log[i]!.written)) return false;
    }
    return true;
  }

  private advance(ws: InternalWriteSet): void {
    const seqno = this.current.version + 1;
    let maps: MapsRoot = this.current.maps;
    const written = new Map<string, string[]>();
    for (const { name, updates } of ws) {
      const existing = get(maps, name);
      let root = existing?.val ?? null;
      for (const [key, value] of updates) {
        root = value === null ? remove(root, key) : insert(root, key, { value, version: seqno });
      }
      written.set(
        name,
        updates.map(([key]) => key),
      );
      // A map comes into existence only by holding a key.
      if (existing === undefined ? root !== null : existing.val !== root) maps = insert(maps, name, root);
    }
    const state: StateRef = { version: seqno, id: this.nextId++, maps };
    if (this.log.length === 0) this.logStart = seqno;
    this.log.push({ parentId: this.current.id, written });
    this.history.push(state);
    this.current = state;
    this.trimLog();
    this.checkVersions();
  }

  /**
   * Versions are contiguous: the history holds one state per version, from the compacted one to
   * the current one, each at its index, and the written-keys log ends at the current version.
   * Snapshots, rollbacks and the conflict check find a version by its index; if the two drifted
   * apart they would silently serve or check against the wrong state.
   */
  private checkVersions(): void {
    const version = this.current.version;
    invariant(
      this.history.length === version - this.compactedVersion + 1 && this.history.at(-1) === this.current,
      () =>
        `the store's history holds ${this.history.length} states from ${this.compactedVersion}, its version is ${version}`,
    );
    invariant(
      this.log.length === 0 || this.logStart + this.log.length - 1 === version,
      () => `the written-keys log ends at ${this.logStart + this.log.length - 1}, the version is ${version}`,
    );
  }

  /** Forgets written keys no open transaction can need, and anything beyond the window. */
  private trimLog(): void {
    const version = this.current.version;
    let oldest = version;
    for (const start of this.openStarts.keys()) if (start < oldest) oldest = start;
    const keepAfter = Math.max(oldest, version - this.conflictWindow);
    const drop = Math.min(this.log.length, keepAfter - this.logStart + 1);
    if (drop > 0) {
      this.log.splice(0, drop);
      this.logStart += drop;
    }
  }
}

/** The value of `key` in map `name` of `maps`, the keys checked as every read checks them. */
function valueIn(maps: MapsRoot, name: string, key: Uint8Array): Uint8Array | undefined {
  validateMapName(name);
  const k = validKey(key) ? toBinary(key) : checkKey(key, `read ${JSON.stringify(name)}`);
  const n = get(get(maps, name)?.val ?? null, k);
  return n === undefined ? undefined : fromBinary(n.val.value);
}
