import { sha256 } from "./hash.ts";

/**
 * The ledger's Merkle tree: SHA-256, shaped as RFC 6962 section 2.1 (a tree of n leaves splits at
 * the largest power of two below n), but with no leaf or node prefixes, as in CCF: a leaf is used
 * as given (it is already a digest) and an interior node is SHA256(left || right).
 *
 * Only perfect subtrees are cached: level h holds the hashes of the aligned blocks of 2^h leaves.
 * Every node of an RFC 6962 tree of any size covers an aligned range whose hash folds from at most
 * log2(n) of those blocks, so roots of the current or any older size, and inclusion paths, never
 * need more than the caches. Appending hashes each completed block once: O(1) amortised.
 *
 * Compaction (`compact`) bounds the memory: below a size, the levels under `MERKLE_KEPT_LEVEL` are
 * dropped page by page, keeping only the frontier there (enough to append, and to give roots and
 * paths from that size on). The levels from `MERKLE_KEPT_LEVEL` up stay: 1/512 of a hash per leaf. A
 * path for an older leaf is then rebuilt from the leaves of its 2^MERKLE_KEPT_LEVEL block (and up to
 * the tree size asked for), which the caller recomputes from elsewhere (the ledger files) and
 * passes in: see `path`'s `leaves`.
 */

const MERKLE_HASH_SIZE = 32;

/** One step of an inclusion path, from the leaf upwards. `left`: the sibling is on the left. */
export type ProofStep = { left: Uint8Array } | { right: Uint8Array };

export class MerkleError extends Error {
  override name = "MerkleError";
}

/** SHA256(left || right): one-shot (src/crypto/hash.ts), about half a `createHash` object's cost. */
function hashPair(left: Uint8Array, right: Uint8Array): Uint8Array {
  return sha256(left, right);
}

function checkDigest(value: unknown, what: string): Uint8Array {
  if (!(value instanceof Uint8Array) || value.length !== MERKLE_HASH_SIZE) {
    const got = value instanceof Uint8Array ? `${value.length} bytes` : typeof value;
    throw new MerkleError(`${what} must be ${MERKLE_HASH_SIZE} bytes, got ${got}`);
  }
  return value;
}

function checkCount(value: number, what: string, min: number, max: number): void {
  if (!Number.isSafeInteger(value) || value < min || value > max) {
    throw new MerkleError(`${what} must be an integer in [${min}, ${max}], got ${value}`);
  }
}

/** Largest power of two strictly below n (n >= 2). */
function splitPoint(n: number): number {
  let k = 1;
  while (k * 2 < n) k *= 2;
  return k;
}

/** Hashes per page of a level: 4,096 x 32 bytes = 128 KiB. */
const PAGE_HASHES = 4096;

/**
 * Levels below this one (blocks of fewer than 1,024 leaves) are what compaction drops. Rebuilding
 * a dropped path needs at most the leaves of one such block and those up to the signed size.
 */
export const MERKLE_KEPT_LEVEL = 10;

/** Leaves the caller recomputed (from the ledger files): `hashes[i]` is leaf `first + i`. */
export interface SuppliedLeaves {
  first: number;
  hashes: readonly Uint8Array[];
}

export interface MerkleTreeOptions {
  /** Hashes per page (default 4,096): tests use small pages to see them dropped. */
  pageHashes?: number;
}

/**
 * One level of the tree: its hashes packed 32 bytes apiece into fixed pages, allocated as they are
 * written (a tree started from a frontier has none below it). One Uint8Array per hash cost about
 * 200 bytes of objects besides its 32 bytes of data, a tree node per transaction.
 */
class HashLevel {
  private pages: Array<Uint8Array | undefined> = [];
  length = 0;

  constructor(readonly pageHashes: number) {}

  /**
   * A view of hash `i` (valid until the level is truncated below it); undefined if never written
   * or dropped.
   */
  get(i: number): Uint8Array | undefined {
    const page = this.pages[Math.floor(i / this.pageHashes)];
    if (page === undefined || i >= this.length) return undefined;
    const at = (i % this.pageHashes) * MERKLE_HASH_SIZE;
    return page.subarray(at, at + MERKLE_HASH_SIZE);
  }

  set(i: number, hash: Uint8Array): void {
    const p = Math.floor(i / this.pageHashes);
    let page = this.pages[p];
    if (page === undefined) {
      page = new Uint8Array(this.pageHashes * MERKLE_HASH_SIZE);
      this.pages[p] = page;
    }
    page.set(hash, (i % this.pageHashes) * MERKLE_HASH_SIZE);
    if (i >= this.length) this.length = i + 1;
  }

  /** Drops page `p` from memory (its hashes read as undefined from then on). */
  dropPage(p: number): void {
    this.pages[p] = undefined;
  }

  /** Pages held in memory. */
  get pagesHeld(): number {
    let n = 0;
    for (const page of this.pages) if (page !== undefined) n++;
    return n;
  }

  push(hash: Uint8Array): void {
    this.set(this.length, hash);
  }

  /** Keeps the first `n` hashes (a longer `n` leaves holes, for a tree started from a frontier). */
  setLength(n: number): void {
    this.length = n;
    this.pages.length = Math.min(this.pages.length, Math.ceil(n / this.pageHashes));
  }
}

/**
 * A tree's compact form at some size: the hashes of the perfect blocks named by the size's set
 * bits, largest (leftmost) first. Enough to extend the tree and to prove anything appended later.
 */
export interface MerkleFrontier {
  size: number;
  hashes: Uint8Array[];
}

export class MerkleTree {
  private readonly pageHashes: number;
  /** levels[h].get(i) = hash of leaves [i * 2^h, (i + 1) * 2^h); levels[0] are the leaves. */
  private readonly levels: HashLevel[];
  /** Leaves before this index are known only through the frontier the tree started from. */
  private start = 0;
  /** Below this size, levels under MERKLE_KEPT_LEVEL may have been dropped (see `compact`). */
  private compacted = 0;
  /** Per level under MERKLE_KEPT_LEVEL: the pages before this one were dropped (or kept for good). */
  private readonly dropCursor: number[] = [];

  constructor(options: MerkleTreeOptions = {}) {
    const pageHashes = options.pageHashes ?? PAGE_HASHES;
    checkCount(pageHashes, "hashes per page", 1, 1 << 20);
    this.pageHashes = pageHashes;
    this.levels = [new HashLevel(pageHashes)];
  }

  /**
   * A tree that continues from a frontier (as a node that starts from a snapshot does): roots of
   * any size from `frontier.size` on, and paths of every leaf appended after it.
   */
  static fromFrontier(frontier: MerkleFrontier, options: MerkleTreeOptions = {}): MerkleTree {
    checkCount(frontier.size, "frontier size", 0, Number.MAX_SAFE_INTEGER);
    const expected = frontier.size.toString(2).replace(/0/g, "").length;
    if (!Array.isArray(frontier.hashes) || frontier.hashes.length !== expected) {
      throw new MerkleError(
        `a frontier of size ${frontier.size} has ${expected} hashes, got ${frontier.hashes?.length}`,
      );
    }
    const tree = new MerkleTree(options);
    let offset = 0;
    let next = 0;
    for (let height = 52; height >= 0; height--) {
      const width = 2 ** height;
      if (frontier.size - offset < width) continue;
      const hash = checkDigest(frontier.hashes[next++], "frontier hash");
      tree.levelAt(height).set(offset / width, hash);
      offset += width;
    }
    // Sparse levels: the right lengths, holes where only the frontier's blocks are known.
    for (let height = 0; height < tree.levels.length; height++) {
      tree.levelAt(height).setLength(Math.floor(frontier.size / 2 ** height));
    }
    tree.start = frontier.size;
    return tree;
  }

  /**
   * The frontier at `size` leaves (the current size by default; never before the tree's start or
   * its compaction).
   */
  frontier(size: number = this.size): MerkleFrontier {
    checkCount(size, "frontier size", this.firstInMemory, this.size);
    const hashes: Uint8Array[] = [];
    let offset = 0;
    for (let height = this.levels.length - 1; height >= 0; height--) {
      const width = 2 ** height;
      if (size - offset < width) continue;
      hashes.push(Uint8Array.from(this.hashAt(height, offset / width)));
      offset += width;
    }
    return { size, hashes };
  }

  /** The first leaf this tree can prove (0 unless it started from a frontier). */
  get firstProvable(): number {
    return this.start;
  }

  /**
   * The first leaf whose path (and the first size whose root) this tree gives from memory alone:
   * older ones need `path`'s supplied leaves.
   */
  get firstInMemory(): number {
    return Math.max(this.start, this.compacted);
  }

  /** Pages of hashes held in memory, all levels together (for tests and measurements). */
  get pagesHeld(): number {
    return this.levels.reduce((n, level) => n + level.pagesHeld, 0);
  }

  /**
   * Forgets what only paths of leaves before `size` need: the pages of the levels under
   * MERKLE_KEPT_LEVEL whose blocks all lie before the frontier at `size`. Kept: that frontier (so
   * appends, roots and paths from `size` on work as before), every level from MERKLE_KEPT_LEVEL up, and
   * any block that starts before `recoverableFrom` (the caller cannot recompute leaves before it:
   * a tree started from a snapshot's frontier keeps that frontier and the snapshot's own leaf).
   * Idempotent; `size` never goes back.
   */
  compact(size: number, recoverableFrom = 0): void {
    checkCount(size, "compacted size", 0, this.size);
    if (size <= this.compacted) return;
    this.compacted = size;
    for (let height = 0; height < Math.min(MERKLE_KEPT_LEVEL, this.levels.length); height++) {
      const width = 2 ** height;
      // The frontier block at `size` on this level, if any, is index floor(size / width) - 1.
      const keepFrom = Math.floor(size / width) - 1;
      const level = this.levels[height]!;
      let p = this.dropCursor[height] ?? 0;
      for (; (p + 1) * this.pageHashes <= keepFrom; p++) {
        if (p * this.pageHashes * width >= recoverableFrom) level.dropPage(p);
      }
      this.dropCursor[height] = p;
    }
  }

  get size(): number {
    return this.levels[0]!.length;
  }

  append(leaf: Uint8Array): void {
    checkDigest(leaf, "Merkle leaf");
    let node: Uint8Array = leaf;
    let height = 0;
    for (;;) {
      const level = this.levelAt(height);
      level.push(node);
      // An even count means the block just completed a pair: hash it into the level above.
      if (level.length % 2 !== 0) return;
      node = hashPair(level.get(level.length - 2)!, node);
      height += 1;
    }
  }

  leaf(index: number): Uint8Array {
    checkCount(index, "leaf index", this.start, this.size - 1);
    return Uint8Array.from(this.hashAt(0, index));
  }

  root(size: number = this.size): Uint8Array {
    if (this.size === 0) throw new MerkleError("the Merkle tree is empty: it has no root");
    checkCount(size, "tree size", Math.max(1, this.firstInMemory), this.size);
    return Uint8Array.from(this.rangeHash(0, size));
  }

  /**
   * The inclusion path of leaf `index` in the tree of `size` leaves. For a leaf before
   * `firstInMemory`, `leaves` must hold the leaves from the start of its 2^MERKLE_KEPT_LEVEL block (or
   * the first recoverable leaf, if later) up to `size - 1`: the dropped hashes are recomputed from
   * them. A hash that is neither held nor computable throws a MerkleError.
   */
  path(index: number, size: number, leaves?: SuppliedLeaves): ProofStep[] {
    if (this.size === 0) throw new MerkleError("the Merkle tree is empty: it has no paths");
    const from = leaves ? this.start : this.firstInMemory;
    checkCount(size, "tree size", Math.max(1, from), this.size);
    checkCount(index, "leaf index", from, size - 1);
    if (leaves) {
      for (const [i, leaf] of leaves.hashes.entries()) checkDigest(leaf, `supplied leaf ${leaves.first + i}`);
    }
    // Walk down from the root, noting each sibling, then return them leaf first.
    const steps: ProofStep[] = [];
    let start = 0;
    let count = size;
    while (count > 1) {
      const k = splitPoint(count);
      if (index < start + k) {
        steps.push({ right: Uint8Array.from(this.rangeHash(start + k, count - k, leaves)) });
        count = k;
      } else {
        steps.push({ left: Uint8Array.from(this.rangeHash(start, k, leaves)) });
        start += k;
        count -= k;
      }
    }
    return steps.reverse();
  }

  truncate(size: number): void {
    checkCount(size, "truncated size", this.firstInMemory, this.size);
    for (let height = 0; height < this.levels.length; height++) {
      this.levels[height]!.setLength(Math.floor(size / 2 ** height));
    }
    while (this.levels.length > 1 && this.levels[this.levels.length - 1]!.length === 0) this.levels.pop();
  }

  private levelAt(height: number): HashLevel {
    let level = this.levels[height];
    if (level === undefined) {
      level = new HashLevel(this.pageHashes);
      this.levels[height] = level;
    }
    return level;
  }

  /**
   * The hash of block `index` of level `height`: recomputed from supplied leaves when they cover
   * it and it lies below MERKLE_KEPT_LEVEL (so a rebuilt path does not depend on what compaction happened
   * to keep), else from memory.
   */
  private hashAt(height: number, index: number, leaves?: SuppliedLeaves): Uint8Array {
    const width = 2 ** height;
    const first = index * width;
    if (
      leaves &&
      height < MERKLE_KEPT_LEVEL &&
      first >= leaves.first &&
      first + width <= leaves.first + leaves.hashes.length
    ) {
      return blockHash(leaves.hashes, first - leaves.first, height);
    }
    const held = this.levels[height]?.get(index);
    if (held === undefined) {
      throw new MerkleError(
        `the hash of leaves [${first}, ${first + width}) is no longer in memory and no leaves were supplied for it`,
      );
    }
    return held;
  }

  /**
   * Hash of the RFC 6962 subtree over leaves [start, start + count), where start is aligned to the
   * power of two at or above count (true of every node in the tree). It is the right fold of the
   * perfect blocks named by count's set bits, largest (leftmost) first.
   */
  private rangeHash(start: number, count: number, leaves?: SuppliedLeaves): Uint8Array {
    const blocks: Uint8Array[] = [];
    let offset = start;
    for (let height = Math.floor(Math.log2(count)); height >= 0; height--) {
      const width = 2 ** height;
      if (count >= offset - start + width) {
        blocks.push(this.hashAt(height, offset / width, leaves));
        offset += width;
      }
    }
    let hash = blocks.pop()!;
    while (blocks.length > 0) hash = hashPair(blocks.pop()!, hash);
    return hash;
  }
}

/** The hash of the perfect block of 2^height leaves starting at `hashes[at]`. */
function blockHash(hashes: readonly Uint8Array[], at: number, height: number): Uint8Array {
  if (height === 0) return hashes[at]!;
  const half = 2 ** (height - 1);
  return hashPair(blockHash(hashes, at, height - 1), blockHash(hashes, at + half, height - 1));
}

/** Folds an inclusion path over a leaf, giving the root the path claims. */
export function rootFromPath(leaf: Uint8Array, path: ProofStep[]): Uint8Array {
  let hash = checkDigest(leaf, "Merkle leaf");
  path.forEach((step, i) => {
    if ("left" in step) hash = hashPair(checkDigest(step.left, `path step ${i} (left)`), hash);
    else hash = hashPair(hash, checkDigest(step.right, `path step ${i} (right)`));
  });
  return Uint8Array.from(hash);
}

/**
 * A transaction's Merkle leaf, as CCF: SHA256(write_set_digest || commit_evidence_digest ||
 * claims_digest), where commit_evidence_digest is the SHA-256 of the UTF-8 commit evidence string.
 * The one place the formula is written; the ledger (appending) and receipts (verifying) both call it.
 */
export function transactionLeaf(
  writeSetDigest: Uint8Array,
  commitEvidenceDigest: Uint8Array,
  claimsDigest: Uint8Array,
): Uint8Array {
  checkDigest(writeSetDigest, "write set digest");
  checkDigest(commitEvidenceDigest, "commit evidence digest");
  checkDigest(claimsDigest, "claims digest");
  return sha256(writeSetDigest, commitEvidenceDigest, claimsDigest);
}
