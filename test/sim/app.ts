import { createHash } from "node:crypto";
import type { Entry } from "../../src/consensus/index.ts";
import { sha256, toHex } from "../../src/crypto/index.ts";
import type { StoreSnapshot, Tx } from "../../src/kv/index.ts";

/**
 * The application the simulated service runs, on the real KV store: get/put/append on string
 * keys of one private map (so its writes are encrypted in the ledger, and backups decrypt them).
 */
export const APP_MAP = "sim.kv";

export type WriteOp = { kind: "put" | "append"; key: string; value: string };
export type ReadOp = { kind: "get"; key: string };
export type ClientOp = WriteOp | ReadOp;

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** "client1:7" for request "client1:7:3": one client operation, whatever the attempt. */
export function operationOf(requestId: string): string {
  return requestId.slice(0, requestId.lastIndexOf(":"));
}

/** Runs a client write as a transaction (on the primary). */
export function executeWrite(tx: Tx, op: WriteOp): void {
  const map = tx.map(APP_MAP);
  const key = encoder.encode(op.key);
  const before = op.kind === "append" ? map.get(key) : undefined;
  map.set(key, encoder.encode((before ? decoder.decode(before) : "") + op.value));
}

/** The application's keys and values in a store snapshot. */
export function appState(snapshot: StoreSnapshot): Map<string, string> {
  const map = snapshot.maps.find((m) => m.name === APP_MAP);
  return new Map((map?.entries ?? []).map(([k, v]) => [decoder.decode(k), decoder.decode(v)]));
}

/**
 * A digest of a whole store snapshot (every map, key, value and the seqno that wrote it), to
 * compare one node's state with another's or with a replay.
 */
export function storeDigest(snapshot: StoreSnapshot): string {
  const hash = createHash("sha256");
  const u32 = (n: number) => {
    const b = Buffer.alloc(4);
    b.writeUInt32LE(n);
    hash.update(b);
  };
  const bytes = (b: Uint8Array) => {
    u32(b.length);
    hash.update(b);
  };
  u32(snapshot.version);
  for (const map of snapshot.maps) {
    bytes(encoder.encode(map.name));
    u32(map.entries.length);
    for (const [key, value, version] of map.entries) {
      bytes(key);
      bytes(value);
      u32(version);
    }
  }
  return hash.digest("hex").slice(0, 16);
}

/**
 * Which client write an entry carries. A write's claims digest names its operation, so the
 * simulator can tell which writes are in a ledger without decrypting it (and every receipt for a
 * write checks a claims digest other than zero).
 */
export class WriteRegistry {
  private readonly byDigest = new Map<string, string>();

  claimsFor(operation: string): Uint8Array {
    const digest = sha256(encoder.encode(`sim-write:${operation}`));
    this.byDigest.set(toHex(digest), operation);
    return digest;
  }

  operationFor(claimsDigest: Uint8Array): string | undefined {
    return this.byDigest.get(toHex(claimsDigest));
  }
}

/** A short fingerprint of an entry's exact bytes, for comparing committed entries across nodes. */
export function entryDigest(entry: Entry): string {
  let h = 0x811c9dc5;
  for (const byte of entry.data) h = Math.imul(h ^ byte, 0x01000193);
  const config = entry.config ? `[${entry.config.join(",")}]` : "";
  return `${entry.view}.${entry.seqno}:${entry.isSignature ? "s" : "-"}${config}:${(h >>> 0).toString(16)}:${entry.data.length}`;
}
