import type { Entry } from "../../src/consensus/index.ts";

/** The replicated state machine of the simulation: a map of string keys to string values. */

export type WriteOp = { kind: "put" | "append"; key: string; value: string };
export type ReadOp = { kind: "get"; key: string };
export type ClientOp = WriteOp | ReadOp;

/** What an entry carries. Raft never looks inside; the simulated nodes do. */
export type Payload =
  | { type: "write"; requestId: string; op: WriteOp }
  | { type: "signature"; view: number; seqno: number }
  | { type: "config"; nodes: string[] };

const encoder = new TextEncoder();
const decoder = new TextDecoder();

export function encodePayload(payload: Payload): Uint8Array {
  return encoder.encode(JSON.stringify(payload));
}

export function decodePayload(data: Uint8Array): Payload {
  return JSON.parse(decoder.decode(data)) as Payload;
}

export class Kv {
  readonly map: Map<string, string>;

  constructor(initial?: ReadonlyMap<string, string>) {
    this.map = new Map(initial);
  }

  apply(payload: Payload): void {
    if (payload.type !== "write") return;
    const { kind, key, value } = payload.op;
    this.map.set(key, kind === "put" ? value : (this.map.get(key) ?? "") + value);
  }

  get(key: string): string {
    return this.map.get(key) ?? "";
  }

  copy(): Map<string, string> {
    return new Map(this.map);
  }
}

export function sameState(a: ReadonlyMap<string, string>, b: ReadonlyMap<string, string>): boolean {
  if (a.size !== b.size) return false;
  for (const [k, v] of a) if (b.get(k) !== v) return false;
  return true;
}

/** A short fingerprint of an entry, for comparing committed entries across nodes. */
export function entryDigest(entry: Entry): string {
  let h = 0x811c9dc5;
  for (const byte of entry.data) h = Math.imul(h ^ byte, 0x01000193);
  const config = entry.config ? `[${entry.config.join(",")}]` : "";
  return `${entry.view}.${entry.seqno}:${entry.isSignature ? "s" : "-"}${config}:${(h >>> 0).toString(16)}:${entry.data.length}`;
}
