import { equalBytes } from "../crypto/index.ts";
import { ZERO_DIGEST } from "./outcomes.ts";

/** What the ledger state keeps about each transaction it holds (for receipts and views). */
export interface TxMeta {
  view: number;
  secretVersion: number;
  writeSetDigest: Uint8Array;
  claimsDigest: Uint8Array;
  isSignature: boolean;
}

const DIGEST = 32;
/** Transactions per page: 4,096 x 32 bytes of write set digests = 128 KiB. */
const PAGE = 4096;

/**
 * The metadata of a run of transactions, packed: write set digests 32 bytes apiece in fixed
 * pages, a flag byte each, views and secret versions as runs (they change rarely), claims digests
 * only where an app set one. An object per transaction with its own digest buffers cost ~500
 * bytes, the larger part of a node's memory growth per transaction (BENCHMARKS.md).
 *
 * `compact` drops the pages before a bound: what only old receipts need, and those are rebuilt
 * from the ledger files (src/ledger/receipts.ts). Views and secret versions stay (a few runs).
 */
export class TxHistory {
  private digests: Array<Uint8Array | undefined> = [];
  private flags: Array<Uint8Array | undefined> = [];
  /** Pages before this one were dropped. */
  private firstPage = 0;
  /** `[first index, value]`, ascending: the value holds from its index until the next run. */
  private views: Array<[number, number]> = [];
  private secretVersions: Array<[number, number]> = [];
  private claims = new Map<number, Uint8Array>();
  private count = 0;

  /** `pageSize`: transactions per page (tests use small pages to see them dropped). */
  constructor(private readonly pageSize = PAGE) {}

  get length(): number {
    return this.count;
  }

  /** The first transaction whose metadata is still held (0 unless compacted). */
  get firstHeld(): number {
    return Math.min(this.firstPage * this.pageSize, this.count);
  }

  /** Pages held in memory (for tests and measurements). */
  get pagesHeld(): number {
    return this.digests.filter((page) => page !== undefined).length;
  }

  push(meta: TxMeta): void {
    const i = this.count;
    const p = Math.floor(i / this.pageSize);
    let digests = this.digests[p];
    let flags = this.flags[p];
    if (digests === undefined || flags === undefined) {
      digests = new Uint8Array(this.pageSize * DIGEST);
      flags = new Uint8Array(this.pageSize);
      this.digests[p] = digests;
      this.flags[p] = flags;
    }
    digests.set(meta.writeSetDigest, (i % this.pageSize) * DIGEST);
    flags[i % this.pageSize] = meta.isSignature ? 1 : 0;
    if (this.views.at(-1)?.[1] !== meta.view) this.views.push([i, meta.view]);
    if (this.secretVersions.at(-1)?.[1] !== meta.secretVersion)
      this.secretVersions.push([i, meta.secretVersion]);
    if (!equalBytes(meta.claimsDigest, ZERO_DIGEST)) this.claims.set(i, Uint8Array.from(meta.claimsDigest));
    this.count = i + 1;
  }

  /** Metadata of transaction `i` (fresh copies), or undefined outside [firstHeld, length). */
  at(i: number): TxMeta | undefined {
    if (!(i >= this.firstHeld && i < this.count)) return undefined;
    const p = Math.floor(i / this.pageSize);
    const at = (i % this.pageSize) * DIGEST;
    return {
      view: runValue(this.views, i),
      secretVersion: runValue(this.secretVersions, i),
      writeSetDigest: this.digests[p]!.slice(at, at + DIGEST),
      claimsDigest: this.claims.get(i) ?? ZERO_DIGEST,
      isSignature: this.flags[p]![i % this.pageSize] === 1,
    };
  }

  /**
   * Drops the metadata of transactions before `n` from memory, whole pages at a time (a page
   * that also holds transactions from `n` on stays). Views stay: `viewAt` answers for all.
   */
  compact(n: number): void {
    const end = Math.min(n, this.count);
    while ((this.firstPage + 1) * this.pageSize <= end) {
      this.digests[this.firstPage] = undefined;
      this.flags[this.firstPage] = undefined;
      this.firstPage++;
    }
    // Ascending insertion order: the claims before the first held transaction come first.
    const firstHeld = this.firstHeld;
    for (const i of this.claims.keys()) {
      if (i >= firstHeld) break;
      this.claims.delete(i);
    }
  }

  /** The view of transaction `i` (no copies), or undefined outside [0, length). */
  viewAt(i: number): number | undefined {
    return i >= 0 && i < this.count ? runValue(this.views, i) : undefined;
  }

  /** Keeps the first `n` transactions (firstHeld <= n <= length). */
  truncate(n: number): void {
    if (n >= this.count) return;
    if (n < this.firstHeld)
      throw new RangeError(`cannot truncate to ${n}: compacted up to ${this.firstHeld}`);
    this.count = Math.max(0, n);
    const pages = Math.ceil(this.count / this.pageSize);
    this.digests.length = pages;
    this.flags.length = pages;
    while ((this.views.at(-1)?.[0] ?? -1) >= this.count) this.views.pop();
    while ((this.secretVersions.at(-1)?.[0] ?? -1) >= this.count) this.secretVersions.pop();
    for (const i of this.claims.keys()) if (i >= this.count) this.claims.delete(i);
  }
}

function runValue(runs: Array<[number, number]>, i: number): number {
  // Binary search for the last run starting at or before i.
  let lo = 0;
  let hi = runs.length - 1;
  while (lo < hi) {
    const mid = (lo + hi + 1) >> 1;
    if (runs[mid]![0] <= i) lo = mid;
    else hi = mid - 1;
  }
  return runs[lo]![1];
}
