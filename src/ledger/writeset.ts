/**
 * The canonical byte form of a write set, shared by the public domain (in clear) and the private
 * domain (as the plaintext that gets encrypted). Canonical means one write set has exactly one
 * encoding: maps sorted by the bytes of their UTF-8 names, updates sorted by key, nothing
 * duplicated, no map without updates (the KV module's own rules). Every node therefore writes
 * identical bytes and the Merkle leaves agree.
 */
import type { MapUpdate, MapWriteSet, WriteSet } from "../kv/index.ts";
import { type ByteReader, type ByteWriter, compareBytes, utf8Bytes } from "./bytes.ts";
import { LedgerError } from "./errors.ts";

export const PUBLIC_PREFIX = "public:";
const OP_PUT = 0;
const OP_REMOVE = 1;
const MAX_U16 = 0xffff;
const MAX_U32 = 0xffffffff;

export function isPublicMap(name: string): boolean {
  return name.startsWith(PUBLIC_PREFIX);
}

interface PreparedMap {
  name: string;
  nameBytes: Uint8Array;
  updates: MapUpdate[];
}

/**
 * Checks maps for encoding and orders them canonically. Map order is fixed here (the KV's own
 * ordering of names might compare UTF-16 units); update order is the caller's job and is checked,
 * because silently reordering keys would hide a KV bug.
 */
export function prepareMaps(maps: readonly MapWriteSet[]): PreparedMap[] {
  const prepared = maps.map((map) => {
    if (typeof map.name !== "string" || map.name.length === 0) {
      throw new LedgerError("map name must be a non-empty string");
    }
    const nameBytes = utf8Bytes(map.name, `map name ${JSON.stringify(map.name)}`);
    if (nameBytes.length > MAX_U16) throw new LedgerError(`map name ${map.name} is longer than 65535 bytes`);
    checkUpdates(map.name, map.updates);
    return { name: map.name, nameBytes, updates: map.updates };
  });
  prepared.sort((a, b) => compareBytes(a.nameBytes, b.nameBytes));
  for (let i = 1; i < prepared.length; i++) {
    if (compareBytes(prepared[i - 1]!.nameBytes, prepared[i]!.nameBytes) === 0) {
      throw new LedgerError(`map ${prepared[i]!.name} appears twice in the write set`);
    }
  }
  return prepared;
}

function checkUpdates(name: string, updates: readonly MapUpdate[]): void {
  if (!Array.isArray(updates) || updates.length === 0) {
    throw new LedgerError(`map ${name}: a write set map needs at least one update`);
  }
  for (let i = 0; i < updates.length; i++) {
    const update = updates[i]!;
    if (!(update.key instanceof Uint8Array))
      throw new LedgerError(`map ${name}: update ${i} has no byte key`);
    if (update.value !== null && !(update.value instanceof Uint8Array)) {
      throw new LedgerError(`map ${name}: update ${i} value must be bytes or null`);
    }
    if (update.key.length > MAX_U32 || (update.value?.length ?? 0) > MAX_U32) {
      throw new LedgerError(`map ${name}: update ${i} is larger than 2^32-1 bytes`);
    }
    if (i > 0 && compareBytes(updates[i - 1]!.key, update.key) >= 0) {
      throw new LedgerError(`map ${name}: keys must be strictly increasing (update ${i})`);
    }
  }
}

export function writeMaps(maps: readonly PreparedMap[], w: ByteWriter): void {
  w.u32(maps.length);
  for (const map of maps) {
    w.u16(map.nameBytes.length);
    w.bytes(map.nameBytes);
    w.u32(map.updates.length);
    for (const update of map.updates) {
      w.u32(update.key.length);
      w.bytes(update.key);
      if (update.value === null) {
        w.u8(OP_REMOVE);
      } else {
        w.u8(OP_PUT);
        w.u32(update.value.length);
        w.bytes(update.value);
      }
    }
  }
}

/**
 * Reads a write set and insists on the canonical form. `domain` says which names are allowed:
 * the public domain holds only `public:` maps, the private domain only the others.
 * Keys and values are views into the reader's bytes, not copies.
 */
export function readMaps(r: ByteReader, domain: "public" | "private"): WriteSet {
  const count = r.u32("map count");
  const maps: WriteSet = [];
  let previous: Uint8Array | undefined;
  for (let m = 0; m < count; m++) {
    const nameAt = r.pos;
    const nameLength = r.u16("map name length");
    if (nameLength === 0) r.fail("empty map name", nameAt);
    const nameBytes = r.data.subarray(r.pos, r.pos + nameLength);
    const name = r.utf8(nameLength, "map name");
    if (isPublicMap(name) !== (domain === "public")) {
      r.fail(`map ${JSON.stringify(name)} does not belong in the ${domain} domain`, nameAt);
    }
    if (previous && compareBytes(previous, nameBytes) >= 0) {
      r.fail(`map ${JSON.stringify(name)} is out of order or repeated`, nameAt);
    }
    previous = nameBytes;
    const countAt = r.pos;
    const updateCount = r.u32("update count");
    if (updateCount === 0) r.fail(`map ${JSON.stringify(name)} has no updates`, countAt);
    const updates: MapUpdate[] = [];
    let previousKey: Uint8Array | undefined;
    for (let u = 0; u < updateCount; u++) {
      const keyAt = r.pos;
      const key = r.bytes(r.u32("key length"), "key");
      if (previousKey && compareBytes(previousKey, key) >= 0) {
        r.fail(`map ${JSON.stringify(name)}: key out of order or repeated`, keyAt);
      }
      previousKey = key;
      const opAt = r.pos;
      const op = r.u8("update op");
      if (op === OP_PUT) {
        updates.push({ key, value: r.bytes(r.u32("value length"), "value") });
      } else if (op === OP_REMOVE) {
        updates.push({ key, value: null });
      } else {
        r.fail(`unknown update op ${op}`, opAt);
      }
    }
    maps.push({ name, updates });
  }
  return maps;
}

/** Sorts maps by the bytes of their UTF-8 names, the order every ledger structure uses. */
export function sortMapsByName<T extends { name: string }>(maps: T[]): T[] {
  const encoder = new TextEncoder();
  return maps
    .map((map) => ({ map, key: encoder.encode(map.name) }))
    .sort((a, b) => compareBytes(a.key, b.key))
    .map((x) => x.map);
}
