import { checkKey, checkValue, compareUtf8, fromBinary } from "./bytes.ts";
import { KvError } from "./errors.ts";
import { checkNextMapName } from "./names.ts";
import { fromSorted, insert, type Node, scan, sizeOf } from "./tree.ts";
import type { Entry, MapsRoot, MapTree } from "./tx.ts";

/** One map's entries: [key, value, seqno of the write that set it], ascending by key. */
export interface MapSnapshot {
  name: string;
  entries: Array<[Uint8Array, Uint8Array, number]>;
}

/** The whole store at `version`: maps sorted by UTF-8 name, maps with no keys omitted. */
export interface StoreSnapshot {
  version: number;
  maps: MapSnapshot[];
}

export function takeSnapshot(version: number, maps: MapsRoot): StoreSnapshot {
  const out: MapSnapshot[] = [];
  for (const m of scan(maps, "", null, Number.POSITIVE_INFINITY)) {
    if (m.val === null) continue;
    const entries = scan(m.val, "", null, Number.POSITIVE_INFINITY).map(
      (n): [Uint8Array, Uint8Array, number] => [fromBinary(n.key), fromBinary(n.val.value), n.val.version],
    );
    out.push({ name: m.key, entries });
  }
  out.sort((a, b) => compareUtf8(a.name, b.name));
  return { version, maps: out };
}

/** Checks a snapshot that came from outside, in the exact canonical shape `takeSnapshot` makes. */
export function parseSnapshot(snap: unknown): { version: number; maps: MapsRoot } {
  if (typeof snap !== "object" || snap === null) throw new KvError("snapshot must be an object");
  const { version, maps } = snap as { version?: unknown; maps?: unknown };
  if (typeof version !== "number" || !Number.isSafeInteger(version) || version < 0) {
    throw new KvError(`snapshot version must be a non-negative integer, got ${String(version)}`);
  }
  if (!Array.isArray(maps)) throw new KvError("snapshot maps must be an array");
  let root: MapsRoot = null;
  let previousName: string | undefined;
  maps.forEach((m: unknown, i) => {
    const where = `snapshot map #${i}`;
    if (typeof m !== "object" || m === null) throw new KvError(`${where}: must be an object`);
    const { name, entries } = m as { name?: unknown; entries?: unknown };
    const mapName = checkNextMapName(where, name, previousName);
    previousName = mapName;
    if (!Array.isArray(entries) || entries.length === 0) {
      throw new KvError(`${where} (${JSON.stringify(mapName)}): entries must be a non-empty array`);
    }
    const parsed: Array<[string, Entry]> = [];
    let previousKey: string | undefined;
    entries.forEach((entry: unknown, j) => {
      const at = `${where} (${JSON.stringify(mapName)}) entry #${j}`;
      if (!Array.isArray(entry) || entry.length !== 3) {
        throw new KvError(`${at}: must be a [key, value, version] triple`);
      }
      const key = checkKey(entry[0], at);
      if (previousKey !== undefined && previousKey >= key) {
        throw new KvError(`${at}: keys must be unique and in ascending byte order`);
      }
      previousKey = key;
      const value = checkValue(entry[1], at);
      const written = entry[2];
      if (typeof written !== "number" || !Number.isSafeInteger(written) || written < 1 || written > version) {
        throw new KvError(
          `${at}: version must be an integer from 1 to the snapshot version ${version}, got ${String(written)}`,
        );
      }
      parsed.push([key, { value, version: written }]);
    });
    root = insert(root, mapName, fromSorted(parsed));
  });
  return { version, maps: root };
}

/**
 * One version of the store, read at leisure. The store's maps are persistent trees (an update
 * copies the path it changes and shares the rest), so a root kept here stays exactly the state of
 * `version` however far the store moves on, rolls back or compacts: a snapshot can be encoded from
 * it in slices while the node keeps committing. Holding it keeps alive only the tree nodes that
 * later writes replaced.
 */
export class StoreVersion {
  /** The maps that hold keys, sorted by UTF-8 name (the snapshot's order). */
  readonly maps: ReadonlyArray<{ readonly name: string; readonly size: number }>;
  private readonly trees: MapTree[];

  constructor(
    readonly version: number,
    root: MapsRoot,
  ) {
    const maps = scan(root, "", null, Number.POSITIVE_INFINITY)
      .filter((m) => m.val !== null)
      .map((m) => ({ name: m.key, size: sizeOf(m.val), tree: m.val }))
      .sort((a, b) => compareUtf8(a.name, b.name));
    this.maps = maps.map(({ name, size }) => ({ name, size }));
    this.trees = maps.map((m) => m.tree);
  }

  /** Keys in every map together. */
  get keyCount(): number {
    let count = 0;
    for (const m of this.maps) count += m.size;
    return count;
  }

  /** Walks map `index` (of `maps`) in ascending key order. */
  cursor(index: number): EntryCursor {
    const tree = this.trees[index];
    if (tree === undefined) throw new KvError(`no map #${index} in the store version ${this.version}`);
    return new EntryCursor(tree);
  }
}

/**
 * An in-order walk of one map that allocates nothing per entry: after `next()` returns true,
 * `key` and `value` are the entry's bytes as latin1 strings (one char per byte) and `written` the
 * seqno that wrote it.
 */
export class EntryCursor {
  key = "";
  value = "";
  written = 0;
  private readonly stack: Array<Node<Entry>> = [];

  constructor(tree: MapTree) {
    for (let n = tree; n !== null; n = n.left) this.stack.push(n);
  }

  next(): boolean {
    const cur = this.stack.pop();
    if (cur === undefined) return false;
    for (let m = cur.right; m !== null; m = m.left) this.stack.push(m);
    this.key = cur.key;
    this.value = cur.val.value;
    this.written = cur.val.version;
    return true;
  }
}
