import { compareUtf8 } from "./bytes.ts";
import { KvError } from "./errors.ts";
import { MAX_MAP_NAME_BYTES } from "./limits.ts";

const PUBLIC_PREFIX = "public:";
// Cc is C0 controls, DEL and C1 controls: invisible in logs and tools, so never part of a name.
const CONTROL = /\p{Cc}/u;
// With the u flag a well-formed surrogate pair is one code point, so this finds only lone halves.
const LONE_SURROGATE = /\p{Cs}/u;

/** A public map is written to the ledger in clear; every other map is encrypted. */
export function isPublicMap(name: string): boolean {
  return name.startsWith(PUBLIC_PREFIX);
}

/**
 * Names that passed validateMapName: a node uses a handful of maps, and every transaction,
 * read and replicated write set checks its names again (two regular expressions each). Bounded,
 * since apps choose names: cleared when full.
 */
const validNames = new Set<string>();
const MAX_REMEMBERED_NAMES = 4096;

export function validateMapName(name: string): void {
  if (validNames.has(name)) return;
  checkMapName(name);
  if (validNames.size >= MAX_REMEMBERED_NAMES) validNames.clear();
  validNames.add(name);
}

function checkMapName(name: string): void {
  if (typeof name !== "string") throw new KvError("map name must be a string");
  if (name.length === 0) throw new KvError("map name must not be empty");
  if (LONE_SURROGATE.test(name)) {
    throw new KvError(`map name ${JSON.stringify(name)} is not valid Unicode (lone surrogate)`);
  }
  const bytes = Buffer.byteLength(name, "utf8");
  if (bytes > MAX_MAP_NAME_BYTES) {
    throw new KvError(`map name is ${bytes} UTF-8 bytes, more than the limit of ${MAX_MAP_NAME_BYTES}`);
  }
  const control = CONTROL.exec(name);
  if (control) {
    const code = control[0].charCodeAt(0).toString(16).padStart(4, "0");
    throw new KvError(
      `map name ${JSON.stringify(name)} contains control character U+${code} at index ${control.index}`,
    );
  }
}

/**
 * Checks the name of the next map in a list that must be sorted by UTF-8 bytes with no repeats
 * (write sets and snapshots); `where` locates it in error messages.
 */
export function checkNextMapName(where: string, name: unknown, previous: string | undefined): string {
  try {
    validateMapName(name as string);
  } catch (e) {
    throw new KvError(`${where}: ${(e as Error).message}`);
  }
  const mapName = name as string;
  if (previous !== undefined && compareUtf8(previous, mapName) >= 0) {
    throw new KvError(
      `${where} (${JSON.stringify(mapName)}): map names must be unique and sorted by UTF-8 bytes, but it follows ${JSON.stringify(previous)}`,
    );
  }
  return mapName;
}
