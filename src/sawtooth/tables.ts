import type { Tx } from "../kv/index.ts";

/**
 * Where Sawtooth's data lives in Coco's KV. Family state and the chain views are private maps, so
 * the ledger holds them encrypted; the batcher allow-list is governance's, public and readable.
 */
export const STATE_MAP = "sawtooth.state";
/** batch id -> BatchRecord of a committed (valid) batch; its KV version is the Coco seqno. */
export const BATCHES_MAP = "sawtooth.batches";
/** batch id -> InvalidRecord. */
export const INVALID_MAP = "sawtooth.invalid_batches";
/** transaction id -> TransactionRecord. */
export const TRANSACTIONS_MAP = "sawtooth.transactions";
/** batcher public key (hex) -> JSON, written by the `set_sawtooth_batchers` governance action. */
export const BATCHERS_MAP = "public:ccf.gov.sawtooth.batchers";

export interface BatchRecord {
  /** The protobuf `Batch`, base64. */
  batch: string;
}

export interface InvalidRecord {
  invalid_transactions: Array<{ id: string; message: string; extended_data: string }>;
}

export interface StateChange {
  address: string;
  value: string;
  type: "SET" | "DELETE";
}

export interface TransactionRecord {
  batch_id: string;
  state_changes: StateChange[];
  events: Array<{ event_type: string; attributes: Array<{ key: string; value: string }>; data: string }>;
  data: string[];
}

const enc = new TextEncoder();
const dec = new TextDecoder();

export const key = (s: string): Uint8Array => enc.encode(s);

export function getJson<T>(tx: Tx, map: string, k: string): T | undefined {
  const v = tx.map(map).get(key(k));
  return v === undefined ? undefined : (JSON.parse(dec.decode(v)) as T);
}

export function putJson(tx: Tx, map: string, k: string, value: unknown): void {
  tx.map(map).set(key(k), enc.encode(JSON.stringify(value)));
}

/** Every key and value of a map, in key order (the chain views are small per batch). */
export function scan(tx: Tx, map: string, start?: string, end?: string): Array<[string, Uint8Array]> {
  const out: Array<[string, Uint8Array]> = [];
  let after: string | undefined;
  const m = tx.map(map);
  for (;;) {
    const page = m.range({
      ...(start !== undefined ? { start: key(start) } : {}),
      ...(end !== undefined ? { end: key(end) } : {}),
      limit: 10000,
      ...(after !== undefined ? { after } : {}),
    });
    for (const [k, v] of page.entries) out.push([dec.decode(k), v]);
    if (!page.next) return out;
    after = page.next;
  }
}

export function isBatcherAllowed(tx: Tx, publicKey: string): boolean {
  return tx.map(BATCHERS_MAP).has(key(publicKey));
}
