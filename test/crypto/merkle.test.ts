import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { describe, test } from "node:test";
import fc from "fast-check";
import { MerkleError, MerkleTree, type ProofStep, rootFromPath } from "../../src/crypto/merkle.ts";

const h = (...parts: Uint8Array[]): Uint8Array => {
  const hash = createHash("sha256");
  for (const p of parts) hash.update(p);
  return hash.digest();
};
const hex = (b: Uint8Array) => Buffer.from(b).toString("hex");
const leafOf = (i: number) => h(Buffer.from(`leaf ${i}`));

/** RFC 6962 section 2.1 MTH, without prefixes: the spec written down as directly as possible. */
function naiveRoot(leaves: Uint8Array[]): Uint8Array {
  if (leaves.length === 1) return leaves[0]!;
  let k = 1;
  while (k * 2 < leaves.length) k *= 2;
  return h(naiveRoot(leaves.slice(0, k)), naiveRoot(leaves.slice(k)));
}

/** RFC 6962 section 2.1.1 PATH, leaf first. */
function naivePath(index: number, leaves: Uint8Array[]): ProofStep[] {
  if (leaves.length === 1) return [];
  let k = 1;
  while (k * 2 < leaves.length) k *= 2;
  if (index < k) return [...naivePath(index, leaves.slice(0, k)), { right: naiveRoot(leaves.slice(k)) }];
  return [...naivePath(index - k, leaves.slice(k)), { left: naiveRoot(leaves.slice(0, k)) }];
}

const stepsHex = (path: ProofStep[]) =>
  path.map((s) => ("left" in s ? { left: hex(s.left) } : { right: hex(s.right) }));

const leafArb = fc.uint8Array({ minLength: 32, maxLength: 32 });

describe("MerkleTree", () => {
  test("small trees have the hand-computed shape", () => {
    const [l0, l1, l2, l3, l4] = [0, 1, 2, 3, 4].map(leafOf) as [
      Uint8Array,
      Uint8Array,
      Uint8Array,
      Uint8Array,
      Uint8Array,
    ];
    const tree = new MerkleTree();
    for (const l of [l0, l1, l2, l3, l4]) tree.append(l);
    assert.equal(tree.size, 5);
    assert.equal(hex(tree.root(1)), hex(l0)); // a leaf is used as is: no leaf prefix, no rehash
    assert.equal(hex(tree.root(2)), hex(h(l0, l1)));
    assert.equal(hex(tree.root(3)), hex(h(h(l0, l1), l2)));
    assert.equal(hex(tree.root(4)), hex(h(h(l0, l1), h(l2, l3))));
    assert.equal(hex(tree.root()), hex(h(h(h(l0, l1), h(l2, l3)), l4)));
    assert.deepEqual(stepsHex(tree.path(2, 3)), [{ left: hex(h(l0, l1)) }]);
    assert.deepEqual(stepsHex(tree.path(1, 4)), [{ left: hex(l0) }, { right: hex(h(l2, l3)) }]);
    assert.deepEqual(stepsHex(tree.path(4, 5)), [{ left: hex(h(h(l0, l1), h(l2, l3))) }]);
    assert.deepEqual(tree.path(0, 1), []);
  });

  test("roots and paths of every size and index match the RFC 6962 definition", () => {
    fc.assert(
      fc.property(fc.array(leafArb, { minLength: 1, maxLength: 40 }), (leaves) => {
        const tree = new MerkleTree();
        const rootsWhenCurrent: string[] = [];
        for (const l of leaves) {
          tree.append(l);
          rootsWhenCurrent.push(hex(tree.root()));
        }
        // Older sizes are asked for after all appends: they must not have drifted.
        for (let size = 1; size <= leaves.length; size++) {
          const prefix = leaves.slice(0, size);
          const expected = hex(naiveRoot(prefix));
          assert.equal(hex(tree.root(size)), expected, `root(${size})`);
          assert.equal(rootsWhenCurrent[size - 1], expected, `root when size was ${size}`);
          for (let i = 0; i < size; i++) {
            const path = tree.path(i, size);
            assert.deepEqual(stepsHex(path), stepsHex(naivePath(i, prefix)), `path(${i}, ${size})`);
            assert.equal(hex(rootFromPath(tree.leaf(i), path)), expected);
          }
        }
      }),
      { numRuns: 40 },
    );
  });

  test("truncate then append behaves like a tree rebuilt from the kept leaves", () => {
    const op = fc.oneof(
      fc.record({
        kind: fc.constant("append" as const),
        leaves: fc.array(leafArb, { minLength: 1, maxLength: 9 }),
      }),
      fc.record({
        kind: fc.constant("truncate" as const),
        fraction: fc.double({ min: 0, max: 1, noNaN: true }),
      }),
    );
    fc.assert(
      fc.property(fc.array(op, { minLength: 1, maxLength: 12 }), (ops) => {
        const tree = new MerkleTree();
        let model: Uint8Array[] = [];
        for (const o of ops) {
          if (o.kind === "append") {
            for (const l of o.leaves) tree.append(l);
            model.push(...o.leaves);
          } else {
            const keep = Math.floor(o.fraction * model.length);
            tree.truncate(keep);
            model = model.slice(0, keep);
          }
          assert.equal(tree.size, model.length);
          for (let size = 1; size <= model.length; size++) {
            assert.equal(hex(tree.root(size)), hex(naiveRoot(model.slice(0, size))));
          }
          for (let i = 0; i < model.length; i++) {
            assert.equal(hex(tree.leaf(i)), hex(model[i]!));
            assert.deepEqual(stepsHex(tree.path(i, model.length)), stepsHex(naivePath(i, model)));
          }
        }
      }),
      { numRuns: 60 },
    );
  });

  test("a path for one leaf does not prove another leaf or another size", () => {
    const tree = new MerkleTree();
    for (let i = 0; i < 13; i++) tree.append(leafOf(i));
    const path = tree.path(6, 13);
    assert.notEqual(hex(rootFromPath(tree.leaf(7), path)), hex(tree.root(13)));
    assert.notEqual(hex(rootFromPath(tree.leaf(6), path)), hex(tree.root(12)));
  });

  test("returned bytes are copies: callers cannot corrupt the tree", () => {
    const tree = new MerkleTree();
    const l0 = leafOf(0);
    tree.append(l0);
    tree.append(leafOf(1));
    const before = hex(tree.root());
    l0.fill(0);
    tree.leaf(0).fill(0);
    tree.root(1).fill(0);
    tree.root().fill(0);
    for (const s of tree.path(0, 2)) ("left" in s ? s.left : s.right).fill(0);
    assert.equal(hex(tree.root()), before);
    assert.equal(hex(tree.leaf(0)), hex(leafOf(0)));
  });

  test("rejects bad input with MerkleError", () => {
    const tree = new MerkleTree();
    assert.throws(() => tree.root(), MerkleError);
    assert.throws(() => tree.path(0, 1), MerkleError);
    assert.throws(() => tree.append(new Uint8Array(31)), /32 bytes, got 31 bytes/);
    assert.throws(() => tree.append("x" as unknown as Uint8Array), MerkleError);
    tree.append(leafOf(0));
    tree.append(leafOf(1));
    assert.throws(() => tree.root(0), /tree size must be an integer in \[1, 2\], got 0/);
    assert.throws(() => tree.root(3), MerkleError);
    assert.throws(() => tree.root(1.5), MerkleError);
    assert.throws(() => tree.path(2, 2), /leaf index must be an integer in \[0, 1\], got 2/);
    assert.throws(() => tree.path(0, 3), MerkleError);
    assert.throws(() => tree.leaf(2), MerkleError);
    assert.throws(() => tree.truncate(3), MerkleError);
    assert.throws(() => rootFromPath(leafOf(0), [{ left: new Uint8Array(3) }]), /path step 0 \(left\)/);
    assert.equal(tree.size, 2);
  });

  test("root and path stay cheap on a large tree", () => {
    const tree = new MerkleTree();
    const n = 1 << 16;
    for (let i = 0; i < n; i++) tree.append(leafOf(i % 1024));
    // CPU time, not wall time: a loaded machine stretches the latter, not the work done.
    const started = process.cpuUsage();
    // With O(n) roots this would hash ~65 million nodes; with the block caches a few thousand.
    for (let size = n - 1000; size <= n; size++) tree.root(size);
    for (let i = 0; i < 1000; i++) tree.path((i * 7919) % n, n);
    const used = process.cpuUsage(started);
    const cpuMs = (used.user + used.system) / 1000;
    assert.ok(cpuMs < 2000, `root/path took too long (${Math.round(cpuMs)} ms of CPU)`);
  });
});

test("a tree continued from a frontier gives the same roots and paths as the whole tree", async () => {
  const { MerkleTree, rootFromPath } = await import("../../src/crypto/merkle.ts");
  const { createHash } = await import("node:crypto");
  const leafOf = (i: number) => createHash("sha256").update(`leaf ${i}`).digest();
  for (const start of [0, 1, 2, 5, 8, 13, 64, 100]) {
    const whole = new MerkleTree();
    for (let i = 0; i < start; i++) whole.append(leafOf(i));
    const continued = MerkleTree.fromFrontier(whole.frontier());
    assert.equal(continued.size, start);
    for (let i = start; i < start + 40; i++) {
      whole.append(leafOf(i));
      continued.append(leafOf(i));
    }
    for (let size = Math.max(1, start); size <= whole.size; size++) {
      assert.deepEqual(continued.root(size), whole.root(size), `root of ${size} from frontier ${start}`);
    }
    for (let index = start; index < whole.size; index++) {
      const path = continued.path(index, whole.size);
      assert.deepEqual(path, whole.path(index, whole.size));
      assert.deepEqual(rootFromPath(leafOf(index), path), whole.root());
    }
    if (start > 0) assert.throws(() => continued.path(start - 1, whole.size), /leaf index/);
    assert.deepEqual(MerkleTree.fromFrontier(continued.frontier()).root(), whole.root());
  }
  assert.throws(() => MerkleTree.fromFrontier({ size: 3, hashes: [leafOf(0)] }), /hashes/);
});
