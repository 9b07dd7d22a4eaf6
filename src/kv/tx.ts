import {
  checkKey,
  checkValue,
  compareUtf8,
  fromBinary,
  successor,
  toBinary,
  validKey,
  validValue,
} from "./bytes.ts";
import { decodeCursor, encodeCursor } from "./cursor.ts";
import { KvError } from "./errors.ts";
import { DEFAULT_RANGE_LIMIT, MAX_RANGE_LIMIT } from "./limits.ts";
import { validateMapName } from "./names.ts";
import { MapReads } from "./readset.ts";
import { get, insert, remove, scan, sizeOf, type Tree } from "./tree.ts";
import { type InternalWriteSet, toPublicWriteSet, type WriteSet } from "./writeset.ts";

/** A stored value and the seqno of the transaction that last wrote it. */
export interface Entry {
  readonly value: string;
  readonly version: number;
}
export type MapTree = Tree<Entry>;
/** All maps at one version: map name -> that map's tree (null once a map has been emptied). */
export type MapsRoot = Tree<MapTree>;

/** The committed state a transaction reads: `id` tells apart two histories with the same version. */
export interface StateRef {
  readonly version: number;
  readonly id: number;
  readonly maps: MapsRoot;
}

export interface RangeOptions {
  /** Inclusive lower bound. */
  start?: Uint8Array;
  /** Exclusive upper bound. */
  end?: Uint8Array;
  /** Page size, 1 to 10000, default 100. */
  limit?: number;
  /** A `next` token from an earlier page: resume strictly after the last key it returned. */
  after?: string;
}

export interface RangeResult {
  entries: Array<[Uint8Array, Uint8Array]>;
  /** Present iff more entries exist in the range after this page. */
  next?: string;
}

export interface TxMap {
  get(key: Uint8Array): Uint8Array | undefined;
  has(key: Uint8Array): boolean;
  getVersionOfPreviousWrite(key: Uint8Array): number | undefined;
  set(key: Uint8Array, value: Uint8Array): void;
  delete(key: Uint8Array): boolean;
  range(opts?: RangeOptions): RangeResult;
  size(): number;
}

export interface Tx {
  readonly startVersion: number;
  readonly isReadOnly: boolean;
  map(name: string): TxMap;
  writeSet(): WriteSet;
  /** Drops the transaction without committing, so the store stops keeping history for it. */
  abandon(): void;
}

// Own writes sit in the transaction's view tree only until commit, which stamps the real seqno;
// the view's version field is never read (getVersionOfPreviousWrite reads the snapshot).
const UNCOMMITTED = 0;

export class Transaction implements Tx {
  readonly startVersion: number;
  readonly baseId: number;
  /** Reads per map name, for the conflict check at commit. */
  readonly reads = new Map<string, MapReads>();
  private readonly base: MapsRoot;
  private readonly maps = new Map<string, TransactionMap>();
  private closed = false;
  /**
   * The write set as last built, until the next write: the caller's check before commit and the
   * commit itself share one build (and one copy of every key and value) instead of two.
   */
  private built: { internal: InternalWriteSet; public: WriteSet | undefined } | undefined;

  constructor(
    readonly owner: object,
    state: StateRef,
    private readonly onClose: () => void,
  ) {
    this.startVersion = state.version;
    this.baseId = state.id;
    this.base = state.maps;
  }

  get isReadOnly(): boolean {
    for (const m of this.maps.values()) if (m.writes.size > 0) return false;
    return true;
  }

  map(name: string): TxMap {
    this.ensureOpen();
    let m = this.maps.get(name);
    if (m === undefined) {
      validateMapName(name);
      const reads = new MapReads();
      this.reads.set(name, reads);
      m = new TransactionMap(this, name, get(this.base, name)?.val ?? null, reads);
      this.maps.set(name, m);
    }
    return m;
  }

  /**
   * The transaction's writes, maps by name and keys in byte order. The same arrays are returned
   * until the next write (the commit hands them to the ledger): callers read them, never change them.
   */
  writeSet(): WriteSet {
    const built = this.build();
    built.public ??= toPublicWriteSet(built.internal);
    return built.public;
  }

  internalWriteSet(): InternalWriteSet {
    return this.build().internal;
  }

  /** A write happened: the write set must be built again. */
  changed(): void {
    this.built = undefined;
  }

  private build(): { internal: InternalWriteSet; public: WriteSet | undefined } {
    if (this.built !== undefined) return this.built;
    const out: InternalWriteSet = [];
    for (const m of this.maps.values()) {
      if (m.writes.size === 0) continue;
      const updates = [...m.writes];
      if (updates.length > 1) updates.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
      out.push({ name: m.name, updates });
    }
    if (out.length > 1) out.sort((a, b) => compareUtf8(a.name, b.name));
    this.built = { internal: out, public: undefined };
    return this.built;
  }

  abandon(): void {
    if (!this.closed) this.close();
  }

  /** Called once, by commit or abandon; later use of the transaction is refused. */
  close(): void {
    this.ensureOpen();
    this.closed = true;
    this.onClose();
  }

  ensureOpen(): void {
    if (this.closed) throw new KvError("transaction is closed (already committed or abandoned)");
  }
}

class TransactionMap implements TxMap {
  /** Own writes: key -> value, or null for a removal. */
  readonly writes = new Map<string, string | null>();
  /**
   * The snapshot with this transaction's own writes applied, for range scans and size: built on
   * the first of those and kept up to date after it. Point reads look at `writes` first and
   * need no tree, so a transaction that only reads and writes keys never copies a tree path
   * (each insert into a persistent tree copies one: the commit makes that copy once, in the store).
   */
  private view: MapTree | undefined;

  constructor(
    private readonly tx: Transaction,
    readonly name: string,
    private readonly base: MapTree,
    private readonly reads: MapReads,
  ) {}

  /** The snapshot with own writes applied (see `view`). */
  private merged(): MapTree {
    if (this.view !== undefined) return this.view;
    let view = this.base;
    for (const [key, value] of this.writes) {
      view = value === null ? remove(view, key) : insert(view, key, { value, version: UNCOMMITTED });
    }
    this.view = view;
    return view;
  }

  /** The value this transaction sees at `key`: its own write if any, else the snapshot's. */
  private current(key: string): string | undefined {
    const own = this.writes.get(key);
    if (own !== undefined) return own === null ? undefined : own;
    return get(this.base, key)?.val.value;
  }

  private key(key: Uint8Array, op: string): string {
    this.tx.ensureOpen();
    return validKey(key) ? toBinary(key) : checkKey(key, `map ${JSON.stringify(this.name)}: ${op}`);
  }

  /** A read answered from this transaction's own write does not depend on the snapshot. */
  private readPoint(key: string): void {
    if (!this.writes.has(key)) this.reads.points.add(key);
  }

  get(key: Uint8Array): Uint8Array | undefined {
    const k = this.key(key, "get");
    this.readPoint(k);
    const value = this.current(k);
    return value === undefined ? undefined : fromBinary(value);
  }

  has(key: Uint8Array): boolean {
    const k = this.key(key, "has");
    this.readPoint(k);
    return this.current(k) !== undefined;
  }

  getVersionOfPreviousWrite(key: Uint8Array): number | undefined {
    const k = this.key(key, "getVersionOfPreviousWrite");
    this.reads.points.add(k);
    return get(this.base, k)?.val.version;
  }

  set(key: Uint8Array, value: Uint8Array): void {
    const k = this.key(key, "set");
    const v = validValue(value)
      ? toBinary(value)
      : checkValue(value, `map ${JSON.stringify(this.name)}: set`);
    this.writes.set(k, v);
    this.tx.changed();
    if (this.view !== undefined) this.view = insert(this.view, k, { value: v, version: UNCOMMITTED });
  }

  /**
   * A removal enters the write set only if the key existed in this transaction's view or was
   * written earlier in it; deleting a key that was never there writes nothing (but is a read, so
   * a concurrent insert of that key makes the transaction conflict).
   */
  delete(key: Uint8Array): boolean {
    const k = this.key(key, "delete");
    this.readPoint(k);
    const existed = this.current(k) !== undefined;
    if (existed || this.writes.has(k)) {
      this.writes.set(k, null);
      this.tx.changed();
      if (this.view !== undefined) this.view = remove(this.view, k);
    }
    return existed;
  }

  range(opts: RangeOptions = {}): RangeResult {
    this.tx.ensureOpen();
    const where = `map ${JSON.stringify(this.name)}: range`;
    if (typeof opts !== "object" || opts === null) throw new KvError(`${where}: options must be an object`);
    const start = opts.start === undefined ? "" : checkKey(opts.start, `${where} start`);
    const end = opts.end === undefined ? null : checkKey(opts.end, `${where} end`);
    if (end !== null && start > end) throw new KvError(`${where}: start is after end`);
    const limit = opts.limit ?? DEFAULT_RANGE_LIMIT;
    if (!Number.isInteger(limit) || limit < 1 || limit > MAX_RANGE_LIMIT) {
      throw new KvError(`${where}: limit must be an integer from 1 to ${MAX_RANGE_LIMIT}, got ${limit}`);
    }
    let lo = start;
    if (opts.after !== undefined) {
      const resume = successor(decodeCursor(opts.after));
      if (resume > lo) lo = resume;
    }
    if (end !== null && lo >= end) return { entries: [] };

    // One entry past the page tells whether there is a next page.
    const found = scan(this.merged(), lo, end, limit + 1);
    const page = found.slice(0, limit);
    const peek = found[limit];
    // Record the interval the answer depends on: up to and including the peeked key (its
    // existence decides `next`), or the whole rest of the range when there is no next page.
    this.reads.ranges.push([lo, peek === undefined ? end : successor(peek.key)]);
    const result: RangeResult = {
      entries: page.map((n) => [fromBinary(n.key), fromBinary(n.val.value)]),
    };
    const last = page[page.length - 1];
    if (peek !== undefined && last !== undefined) result.next = encodeCursor(last.key);
    return result;
  }

  size(): number {
    this.tx.ensureOpen();
    this.reads.ranges.push(["", null]);
    return sizeOf(this.merged());
  }
}
