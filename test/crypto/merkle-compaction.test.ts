import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { test } from "node:test";
import fc from "fast-check";
import {
  MERKLE_KEPT_LEVEL,
  MerkleError,
  MerkleTree,
  rootFromPath,
  type SuppliedLeaves,
} from "../../src/crypto/merkle.ts";

const leafOf = (i: number) => new Uint8Array(createHash("sha256").update(`leaf ${i}`).digest());
const BLOCK = 2 ** MERKLE_KEPT_LEVEL;

/** The leaves a caller recomputes for an old path: from its block's start (or `recoverable`) to size - 1. */
function supplied(index: number, size: number, recoverable: number): SuppliedLeaves {
  const first = Math.max(Math.floor(index / BLOCK) * BLOCK, recoverable);
  return { first, hashes: Array.from({ length: size - first }, (_, i) => leafOf(first + i)) };
}

test("a compacted tree gives the whole tree's roots, frontiers and paths; older paths from supplied leaves", () => {
  fc.assert(
    fc.property(
      fc.integer({ min: 1, max: 2600 }),
      fc.double({ min: 0, max: 1, noNaN: true }),
      fc.integer({ min: 0, max: 2600 }),
      fc.option(fc.double({ min: 0, max: 1, noNaN: true }), { nil: undefined }),
      fc.integer({ min: 0, max: 0xffff }),
      (n, cutAt, more, snapshotAt, seed) => {
        // A tree that started from a frontier (a node started from a snapshot) or from nothing.
        const start = snapshotAt === undefined ? 0 : Math.floor(snapshotAt * n);
        const whole = new MerkleTree();
        for (let i = 0; i < start; i++) whole.append(leafOf(i));
        const tree = MerkleTree.fromFrontier(whole.frontier(), { pageHashes: 4 });
        for (let i = start; i < n; i++) {
          whole.append(leafOf(i));
          tree.append(leafOf(i));
        }
        // As the ledger state does: leaves from `recoverable` on can be read back from the files.
        const recoverable = start === 0 ? 0 : start + 1;
        const cut = Math.floor(cutAt * n);
        const held = tree.pagesHeld;
        tree.compact(cut, recoverable);
        if (cut > start + 64) assert.ok(tree.pagesHeld < held, `compact(${cut}) dropped pages`);
        for (let i = n; i < n + more; i++) {
          whole.append(leafOf(i));
          tree.append(leafOf(i));
        }
        const low = Math.max(1, tree.firstInMemory);
        assert.equal(tree.firstInMemory, Math.max(start, cut));
        const pick = (lo: number, hi: number, k: number) =>
          hi < lo ? lo : lo + ((seed * 7919 + k * 104729) % (hi - lo + 1));
        for (let k = 0; k < 6; k++) {
          const size = pick(low, whole.size, k);
          assert.deepEqual(tree.root(size), whole.root(size), `root(${size})`);
          assert.deepEqual(tree.frontier(size), whole.frontier(size), `frontier(${size})`);
          const index = pick(tree.firstInMemory, size - 1, k + 1);
          if (index < size) {
            assert.deepEqual(tree.path(index, size), whole.path(index, size), `path(${index}, ${size})`);
          }
        }
        // Leaves whose paths left memory: rebuilt from supplied leaves, identical to the whole tree's.
        for (let k = 0; recoverable < cut && k < 4; k++) {
          const index = pick(recoverable, cut - 1, k);
          const size = pick(index + 1, whole.size, k + 3);
          assert.throws(() => tree.path(index, size), MerkleError);
          const path = tree.path(index, size, supplied(index, size, recoverable));
          assert.deepEqual(path, whole.path(index, size), `rebuilt path(${index}, ${size})`);
          assert.deepEqual(rootFromPath(leafOf(index), path), whole.root(size));
        }
        // Rolling back to the compaction point (never below) and appending again still agrees.
        const keep = Math.max(tree.firstInMemory, whole.size - 3);
        tree.truncate(keep);
        whole.truncate(keep);
        for (let i = keep; i < keep + 5; i++) {
          whole.append(leafOf(i));
          tree.append(leafOf(i));
        }
        assert.deepEqual(tree.root(), whole.root());
        if (tree.firstInMemory > 0) assert.throws(() => tree.truncate(tree.firstInMemory - 1), MerkleError);
      },
    ),
    { numRuns: 30 },
  );
});

test("supplied leaves cannot stand in for a hash they do not cover", () => {
  const tree = new MerkleTree({ pageHashes: 4 });
  for (let i = 0; i < 3000; i++) tree.append(leafOf(i));
  tree.compact(2900);
  // Leaves of the wrong block: the dropped hashes of leaf 100's block are not computable.
  assert.throws(() => tree.path(100, 2000, supplied(1500, 2000, 0)), /no longer in memory/);
  assert.throws(
    () => tree.path(100, 2000, { first: 0, hashes: [new Uint8Array(31)] }),
    /supplied leaf 0 must be 32 bytes/,
  );
});

test("memory stays bounded: a compacted tree of 200,000 leaves holds a few pages", () => {
  const tree = new MerkleTree();
  const whole = new MerkleTree();
  for (let i = 0; i < 200_000; i++) {
    const leaf = leafOf(i % 4096);
    tree.append(leaf);
    whole.append(leaf);
    if (i % 1000 === 999) tree.compact(Math.max(i + 1 - 10_000, 0));
  }
  // Whole: about 2 x 200,000 hashes in 4,096-hash pages over 18 levels (~112 pages, 14 MiB).
  assert.ok(whole.pagesHeld > 100, `whole tree holds ${whole.pagesHeld} pages`);
  // Compacted: the last ~10,000 leaves' pages on the lower levels, one page per upper level.
  assert.ok(tree.pagesHeld <= 30, `compacted tree holds ${tree.pagesHeld} pages`);
  assert.deepEqual(tree.root(), whole.root());
  assert.deepEqual(tree.path(199_000, 200_000), whole.path(199_000, 200_000));
});
