import { checkKey, checkValue, fromBinary, toBinary, validKey, validValue } from "./bytes.ts";
import { KvError } from "./errors.ts";
import { checkNextMapName } from "./names.ts";

export type Key = Uint8Array;
export type Value = Uint8Array;

/** One key's final state after a transaction; `value: null` removes the key. */
export interface MapUpdate {
  key: Uint8Array;
  value: Uint8Array | null;
}

/** Updates sorted by key in unsigned byte order, keys unique, at least one update. */
export interface MapWriteSet {
  name: string;
  updates: MapUpdate[];
}

/** Sorted by map name (by UTF-8 bytes); only maps with at least one update. */
export type WriteSet = MapWriteSet[];

/** The same shape with binary-string keys and values (see bytes.ts). */
export interface InternalMapWrites {
  name: string;
  updates: Array<[key: string, value: string | null]>;
}
export type InternalWriteSet = InternalMapWrites[];

export function toPublicWriteSet(ws: InternalWriteSet): WriteSet {
  return ws.map(({ name, updates }) => ({
    name,
    updates: updates.map(([key, value]) => ({
      key: fromBinary(key),
      value: value === null ? null : fromBinary(value),
    })),
  }));
}

function updateAt(where: string, mapName: string, j: number): string {
  return `${where} (${JSON.stringify(mapName)}) update #${j}`;
}

/** Checks a write set that came from outside (a ledger entry, a primary) and converts it. */
export function parseWriteSet(ws: unknown): InternalWriteSet {
  if (!Array.isArray(ws)) throw new KvError("write set must be an array of map write sets");
  const out: InternalWriteSet = [];
  let previousName: string | undefined;
  ws.forEach((mapWrites: unknown, i) => {
    const where = `write set map #${i}`;
    if (typeof mapWrites !== "object" || mapWrites === null) throw new KvError(`${where}: must be an object`);
    const { name, updates } = mapWrites as { name?: unknown; updates?: unknown };
    const mapName = checkNextMapName(where, name, previousName);
    previousName = mapName;
    if (!Array.isArray(updates) || updates.length === 0) {
      throw new KvError(`${where} (${JSON.stringify(mapName)}): updates must be a non-empty array`);
    }
    const parsed: Array<[string, string | null]> = [];
    let previousKey: string | undefined;
    updates.forEach((update: unknown, j) => {
      // The context of an error is built only for an update that fails (backups parse every one).
      if (typeof update !== "object" || update === null)
        throw new KvError(`${updateAt(where, mapName, j)}: must be an object`);
      const { key, value } = update as { key?: unknown; value?: unknown };
      const k = validKey(key) ? toBinary(key) : checkKey(key, updateAt(where, mapName, j));
      if (previousKey !== undefined && previousKey >= k) {
        throw new KvError(`${updateAt(where, mapName, j)}: keys must be unique and in ascending byte order`);
      }
      previousKey = k;
      parsed.push([
        k,
        value === null
          ? null
          : validValue(value)
            ? toBinary(value)
            : checkValue(value, updateAt(where, mapName, j)),
      ]);
    });
    out.push({ name: mapName, updates: parsed });
  });
  return out;
}
