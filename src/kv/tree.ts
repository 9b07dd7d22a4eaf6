/**
 * A persistent (immutable, path-copying) AVL tree keyed by strings in `<` order.
 * Every update returns a new root and shares all untouched nodes with the old one, so keeping an
 * old root is a free, consistent snapshot. Nodes carry subtree sizes so `size` is O(1).
 */
export interface Node<V> {
  readonly key: string;
  readonly val: V;
  readonly left: Tree<V>;
  readonly right: Tree<V>;
  readonly height: number;
  readonly size: number;
}

export type Tree<V> = Node<V> | null;

function heightOf<V>(t: Tree<V>): number {
  return t === null ? 0 : t.height;
}

export function sizeOf<V>(t: Tree<V>): number {
  return t === null ? 0 : t.size;
}

function node<V>(key: string, val: V, left: Tree<V>, right: Tree<V>): Node<V> {
  const hl = heightOf(left);
  const hr = heightOf(right);
  return {
    key,
    val,
    left,
    right,
    height: Math.max(hl, hr) + 1,
    size: sizeOf(left) + sizeOf(right) + 1,
  };
}

/** Builds a node from subtrees whose heights differ by at most 2, restoring the AVL invariant. */
function balance<V>(key: string, val: V, left: Tree<V>, right: Tree<V>): Node<V> {
  const hl = heightOf(left);
  const hr = heightOf(right);
  if (hl > hr + 1 && left !== null) {
    if (heightOf(left.left) >= heightOf(left.right)) {
      return node(left.key, left.val, left.left, node(key, val, left.right, right));
    }
    const lr = left.right!;
    return node(
      lr.key,
      lr.val,
      node(left.key, left.val, left.left, lr.left),
      node(key, val, lr.right, right),
    );
  }
  if (hr > hl + 1 && right !== null) {
    if (heightOf(right.right) >= heightOf(right.left)) {
      return node(right.key, right.val, node(key, val, left, right.left), right.right);
    }
    const rl = right.left!;
    return node(
      rl.key,
      rl.val,
      node(key, val, left, rl.left),
      node(right.key, right.val, rl.right, right.right),
    );
  }
  return node(key, val, left, right);
}

export function get<V>(t: Tree<V>, key: string): Node<V> | undefined {
  let n = t;
  while (n !== null) {
    if (key < n.key) n = n.left;
    else if (key > n.key) n = n.right;
    else return n;
  }
  return undefined;
}

/** Inserts or replaces `key`. */
export function insert<V>(t: Tree<V>, key: string, val: V): Node<V> {
  if (t === null) return node(key, val, null, null);
  if (key < t.key) return balance(t.key, t.val, insert(t.left, key, val), t.right);
  if (key > t.key) return balance(t.key, t.val, t.left, insert(t.right, key, val));
  return node(key, val, t.left, t.right);
}

function removeMin<V>(t: Node<V>): [Node<V>, Tree<V>] {
  if (t.left === null) return [t, t.right];
  const [min, rest] = removeMin(t.left);
  return [min, balance(t.key, t.val, rest, t.right)];
}

/** Removes `key`; returns the same root when the key is absent. */
export function remove<V>(t: Tree<V>, key: string): Tree<V> {
  if (t === null) return null;
  if (key < t.key) {
    const left = remove(t.left, key);
    return left === t.left ? t : balance(t.key, t.val, left, t.right);
  }
  if (key > t.key) {
    const right = remove(t.right, key);
    return right === t.right ? t : balance(t.key, t.val, t.left, right);
  }
  if (t.left === null) return t.right;
  if (t.right === null) return t.left;
  const [min, rest] = removeMin(t.right);
  return balance(min.key, min.val, t.left, rest);
}

/**
 * Up to `max` nodes with `lo <= key` and (when `hi` is not null) `key < hi`, ascending.
 * O(log n + k): descend once to the lower bound, then walk in order with an explicit stack.
 */
export function scan<V>(t: Tree<V>, lo: string, hi: string | null, max: number): Node<V>[] {
  const stack: Node<V>[] = [];
  let n = t;
  while (n !== null) {
    if (n.key >= lo) {
      stack.push(n);
      n = n.left;
    } else {
      n = n.right;
    }
  }
  const out: Node<V>[] = [];
  while (out.length < max) {
    const cur = stack.pop();
    if (cur === undefined || (hi !== null && cur.key >= hi)) break;
    out.push(cur);
    for (let m = cur.right; m !== null; m = m.left) stack.push(m);
  }
  return out;
}

/** A balanced tree from entries already sorted by strictly ascending key, in O(n). */
export function fromSorted<V>(entries: ReadonlyArray<readonly [string, V]>): Tree<V> {
  const build = (from: number, to: number): Tree<V> => {
    if (from >= to) return null;
    const mid = (from + to) >>> 1;
    const [key, val] = entries[mid]!;
    return node(key, val, build(from, mid), build(mid + 1, to));
  };
  return build(0, entries.length);
}
