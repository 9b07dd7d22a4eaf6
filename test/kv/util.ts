import { Store, type WriteSet } from "../../src/kv/index.ts";

const encoder = new TextEncoder();
const decoder = new TextDecoder();

export function b(text: string): Uint8Array {
  return encoder.encode(text);
}

export function str(bytes: Uint8Array | undefined): string | undefined {
  return bytes === undefined ? undefined : decoder.decode(bytes);
}

/** Unsigned byte order, the KV's key order. */
export function compareBytes(a: Uint8Array, c: Uint8Array): number {
  return Buffer.compare(a, c);
}

export function hex(bytes: Uint8Array): string {
  return Buffer.from(bytes).toString("hex");
}

/** Commits one transaction that sets (or, for null, deletes) string keys in one map. */
export function put(store: Store, name: string, writes: Record<string, string | null>): number {
  const tx = store.begin();
  const m = tx.map(name);
  for (const [k, v] of Object.entries(writes)) {
    if (v === null) m.delete(b(k));
    else m.set(b(k), b(v));
  }
  const r = store.commit(tx);
  if (!r.ok || r.seqno === null) throw new Error(`expected a write commit, got ${JSON.stringify(r)}`);
  return r.seqno;
}

export function replay(writeSets: WriteSet[]): Store {
  const store = new Store();
  writeSets.forEach((ws, i) => {
    store.apply(i + 1, ws);
  });
  return store;
}
