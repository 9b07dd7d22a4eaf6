import { createHash } from "node:crypto";
import type { Tx } from "../../kv/index.ts";
import { RpcError } from "../errors.ts";
import { PRIVATE_MAPS } from "./groups.ts";
import { TESSERA_KEY } from "./parties.ts";

/** A payload handed to `storeraw`, kept until (and after) a private transaction uses it. */
export interface StoredPayload {
  /** The plaintext payload (the transaction's real data), base64. */
  payload: string;
  /** The Tessera key of the party that stored it. */
  from: string;
  /** The Coco user that stored it. */
  owner: string;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();
/** At most this much payload (a contract's init code fits many times over). */
export const MAX_PAYLOAD_BYTES = 1 << 20;

/**
 * Tessera's `storeraw`: keeps the payload and answers the 64-byte key a Quorum client puts in
 * the transaction's data field. The key is SHA3-512 over fresh random bytes and the payload, so
 * it says nothing about the payload (equal payloads get different keys, and guessing the
 * plaintext does not confirm it), as Tessera's hash of a ciphertext does not.
 */
export function storeRaw(
  tx: Tx,
  body: unknown,
  owner: string,
  keys: Set<string>,
  randomBytes: (n: number) => Uint8Array,
): { key: string } {
  if (typeof body !== "object" || body === null) throw new RpcError(-32602, "expected {payload, from}");
  const { payload, from } = body as { payload?: unknown; from?: unknown };
  if (typeof payload !== "string" || !/^[A-Za-z0-9+/]*={0,2}$/.test(payload) || payload.length % 4 !== 0) {
    throw new RpcError(-32602, "payload must be base64");
  }
  const bytes = Buffer.from(payload, "base64");
  if (bytes.length === 0 || bytes.length > MAX_PAYLOAD_BYTES) {
    throw new RpcError(-32602, `payload must be 1 to ${MAX_PAYLOAD_BYTES} bytes`);
  }
  const sender = from === undefined || from === null ? [...keys][0] : from;
  if (typeof sender !== "string" || !TESSERA_KEY.test(sender)) {
    throw new RpcError(-32602, "from must be a base64 Tessera public key");
  }
  if (!keys.has(sender))
    throw new RpcError(-32000, `the key ${sender} is not bound to the calling Coco user`);
  const key = createHash("sha3-512").update(randomBytes(32)).update(bytes).digest();
  const record: StoredPayload = { payload, from: sender, owner };
  tx.map(PRIVATE_MAPS.payloads).set(key, encoder.encode(JSON.stringify(record)));
  return { key: key.toString("base64") };
}

export function readPayload(tx: Tx, key: Uint8Array): StoredPayload | undefined {
  if (key.length !== 64) return undefined;
  const raw = tx.map(PRIVATE_MAPS.payloads).get(key);
  return raw === undefined ? undefined : (JSON.parse(decoder.decode(raw)) as StoredPayload);
}
