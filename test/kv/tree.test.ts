import assert from "node:assert/strict";
import { test } from "node:test";
import fc from "fast-check";
import { fromSorted, get, insert, remove, scan, sizeOf, type Tree } from "../../src/kv/tree.ts";

function checkAvl<V>(t: Tree<V>): number {
  if (t === null) return 0;
  const hl = checkAvl(t.left);
  const hr = checkAvl(t.right);
  assert.ok(Math.abs(hl - hr) <= 1, `unbalanced at ${JSON.stringify(t.key)}`);
  assert.equal(t.height, Math.max(hl, hr) + 1);
  assert.equal(t.size, sizeOf(t.left) + sizeOf(t.right) + 1);
  if (t.left) assert.ok(t.left.key < t.key);
  if (t.right) assert.ok(t.right.key > t.key);
  return t.height;
}

function contents<V>(t: Tree<V>): Array<[string, V]> {
  return scan(t, "", null, Number.POSITIVE_INFINITY).map((n) => [n.key, n.val]);
}

function modelContents(model: Map<string, number>): Array<[string, number]> {
  return [...model].sort((a, c) => (a[0] < c[0] ? -1 : a[0] > c[0] ? 1 : 0));
}

const key = fc.string({ unit: fc.constantFrom("a", "b", "c", "\u0000", "\u00ff"), maxLength: 4 });
const op = fc.oneof(
  fc.record({ kind: fc.constant("insert" as const), key, val: fc.nat(1000) }),
  fc.record({ kind: fc.constant("remove" as const), key }),
);

test("persistent AVL tree matches a sorted model and old roots never change", () => {
  fc.assert(
    fc.property(
      fc.array(op, { maxLength: 300, size: "max" }),
      key,
      key,
      fc.integer({ min: 1, max: 20 }),
      (ops, a, c, max) => {
        let t: Tree<number> = null;
        const model = new Map<string, number>();
        const history: Array<[Tree<number>, Array<[string, number]>]> = [];
        for (const o of ops) {
          if (o.kind === "insert") {
            t = insert(t, o.key, o.val);
            model.set(o.key, o.val);
          } else {
            const before: Tree<number> = t;
            t = remove(t, o.key);
            if (!model.delete(o.key)) assert.equal(t, before, "removing an absent key keeps the root");
          }
          history.push([t, modelContents(model)]);
        }
        checkAvl(t);
        assert.equal(sizeOf(t), model.size);
        for (const [k, v] of model) assert.equal(get(t, k)?.val, v);
        assert.equal(get(t, "zzz"), undefined);
        const [lo, hi] = a <= c ? [a, c] : [c, a];
        const expected = modelContents(model)
          .filter(([k]) => k >= lo && k < hi)
          .slice(0, max);
        assert.deepEqual(
          scan(t, lo, hi, max).map((n) => [n.key, n.val]),
          expected,
        );
        for (const [root, snapshot] of history) assert.deepEqual(contents(root), snapshot);
      },
    ),
  );
});

test("fromSorted builds a balanced tree", () => {
  for (const n of [0, 1, 2, 3, 7, 100, 1000]) {
    const entries = Array.from({ length: n }, (_, i): [string, number] => [String(i).padStart(5, "0"), i]);
    const t = fromSorted(entries);
    checkAvl(t);
    assert.deepEqual(contents(t), entries);
  }
});
