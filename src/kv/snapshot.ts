import { checkKey, checkValue, compareUtf8, fromBinary } from "./bytes.ts";
import { KvError } from "./errors.ts";
import { checkNextMapName } from "./names.ts";
import { fromSorted, insert, scan } from "./tree.ts";
import type { Entry, MapsRoot } from "./tx.ts";

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
