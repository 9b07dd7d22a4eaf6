// `ccf.kv` over one transaction, with the rule that apps only read the framework's maps, and
// historical states (one transaction's writes) as read-only stores.
import type { KvAccess } from "../js/index.ts";
import type { Tx, WriteSet } from "../kv/index.ts";

/** Maps written by the node and governance only. */
export function isFrameworkMap(name: string): boolean {
  return name.startsWith("public:ccf.") || name.startsWith("ccf.");
}

function refuseFramework(map: string, op: string): void {
  if (isFrameworkMap(map)) {
    throw new TypeError(`Cannot call ${op}() on map '${map}': apps may not write the framework's maps`);
  }
}

function allEntries(tx: Tx, map: string): Array<[Uint8Array, Uint8Array]> {
  const out: Array<[Uint8Array, Uint8Array]> = [];
  let after: string | undefined;
  do {
    const page = tx.map(map).range({ limit: 10_000, ...(after === undefined ? {} : { after }) });
    out.push(...page.entries);
    after = page.next;
  } while (after !== undefined);
  return out;
}

/** The KV of an app's transaction as the sandbox sees it, ordered range scans included. */
export function appKv(tx: Tx): KvAccess {
  return {
    get: (map, key) => tx.map(map).get(key),
    has: (map, key) => tx.map(map).has(key),
    getVersionOfPreviousWrite: (map, key) => tx.map(map).getVersionOfPreviousWrite(key),
    set(map, key, value) {
      refuseFramework(map, "set");
      tx.map(map).set(key, value);
    },
    delete(map, key) {
      refuseFramework(map, "delete");
      return tx.map(map).delete(key);
    },
    clear(map) {
      refuseFramework(map, "clear");
      const m = tx.map(map);
      for (const [key] of allEntries(tx, map)) m.delete(key);
    },
    entries: (map) => allEntries(tx, map),
    size: (map) => tx.map(map).size(),
    range: (map, options) => tx.map(map).range(options),
  };
}

/** The state one transaction left: the keys it wrote (a removal reads as absent). */
export function writeSetKv(writeSet: WriteSet): KvAccess {
  const maps = new Map<string, Map<string, [Uint8Array, Uint8Array]>>();
  for (const { name, updates } of writeSet) {
    const m = new Map<string, [Uint8Array, Uint8Array]>();
    for (const { key, value } of updates) {
      if (value !== null) m.set(Buffer.from(key).toString("latin1"), [key, value]);
    }
    maps.set(name, m);
  }
  const find = (map: string) => maps.get(map) ?? new Map<string, [Uint8Array, Uint8Array]>();
  const readOnly = (): never => {
    throw new TypeError("a historical state is read-only");
  };
  return {
    get: (map, key) => find(map).get(Buffer.from(key).toString("latin1"))?.[1],
    has: (map, key) => find(map).has(Buffer.from(key).toString("latin1")),
    set: readOnly,
    delete: readOnly,
    clear: readOnly,
    entries: (map) => [...find(map).values()],
    size: (map) => find(map).size,
  };
}
