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
 */
export class TxHistory {
  private digests: Uint8Array[] = [];
  private flags: Uint8Array[] = [];
  /** `[first index, value]`, ascending: the value holds from its index until the next run. */
  private views: Array<[number, number]> = [];
  private secretVersions: Array<[number, number]> = [];
  private claims = new Map<number, Uint8Array>();
  private count = 0;

  get length(): number {
    return this.count;
  }

  push(meta: TxMeta): void {
    const i = this.count;
    const p = Math.floor(i / PAGE);
    if (this.digests[p] === undefined) {
      this.digests[p] = new Uint8Array(PAGE * DIGEST);
      this.flags[p] = new Uint8Array(PAGE);
    }
    this.digests[p]!.set(meta.writeSetDigest, (i % PAGE) * DIGEST);
    this.flags[p]![i % PAGE] = meta.isSignature ? 1 : 0;
    if (this.views.at(-1)?.[1] !== meta.view) this.views.push([i, meta.view]);
    if (this.secretVersions.at(-1)?.[1] !== meta.secretVersion)
      this.secretVersions.push([i, meta.secretVersion]);
    if (!equalBytes(meta.claimsDigest, ZERO_DIGEST)) this.claims.set(i, Uint8Array.from(meta.claimsDigest));
    this.count = i + 1;
  }

  /** Metadata of transaction `i` (fresh copies), or undefined outside [0, length). */
  at(i: number): TxMeta | undefined {
    if (!(i >= 0 && i < this.count)) return undefined;
    const p = Math.floor(i / PAGE);
    const at = (i % PAGE) * DIGEST;
    return {
      view: runValue(this.views, i),
      secretVersion: runValue(this.secretVersions, i),
      writeSetDigest: this.digests[p]!.slice(at, at + DIGEST),
      claimsDigest: this.claims.get(i) ?? ZERO_DIGEST,
      isSignature: this.flags[p]![i % PAGE] === 1,
    };
  }

  /** The view of transaction `i` (no copies), or undefined outside [0, length). */
  viewAt(i: number): number | undefined {
    return i >= 0 && i < this.count ? runValue(this.views, i) : undefined;
  }

  /** Keeps the first `n` transactions (n <= length). */
  truncate(n: number): void {
    if (n >= this.count) return;
    this.count = Math.max(0, n);
    const pages = Math.ceil(this.count / PAGE);
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
