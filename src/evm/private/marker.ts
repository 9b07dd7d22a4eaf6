import { createHash } from "node:crypto";
import { bytesToHex, hexToBytes } from "@ethereumjs/util";
import type { Tx } from "../../kv/index.ts";
import { hex } from "../chain.ts";
import { readEvmConfig } from "../config.ts";
import { RpcError } from "../errors.ts";
import type { StoredTx } from "../records.ts";
import { decodeRawTx } from "../send.ts";
import type { EvmRandom } from "../vm.ts";
import { isParty, PRIVATE_MAPS } from "./groups.ts";
import { checkPrivate, checkPublicNonce, runPrivate } from "./send.ts";

/**
 * Privacy marker transactions, as GoQuorum has them: the client hands the signed private
 * transaction to `eth_distributePrivateTransaction`, which answers a 64-byte key; it then signs an
 * ordinary public transaction to the privacy precompile whose data is that key, and sends it with
 * `eth_sendRawTransaction`. Running the marker runs the private transaction in its group. The
 * marker is public (sender, precompile, key, nonce), as on GoQuorum; what it carries out is not:
 * `eth_getPrivateTransactionByHash`/`Receipt` of the marker's hash answer its parties only.
 */
export const PRIVACY_PRECOMPILE = "0x000000000000000000000000000000000000007a";

/** `to` = the precompile, as RLP writes it (0x94: a 20-byte string). */
const MARKER_TO_RLP = `94${PRIVACY_PRECOMPILE.slice(2)}`;
const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** What `eth_distributePrivateTransaction` keeps until a marker runs it. */
interface Distributed {
  raw: string;
  args: unknown;
  /** The Coco user that distributed it: only its own marker may run it. */
  owner: string;
}

/** Marker hash -> the private transaction it ran and that transaction's group. */
interface MarkerLink {
  privateHash: string;
  group: string;
}

function isKey(v: unknown): v is string {
  return typeof v === "string" && /^0x[0-9a-fA-F]{128}$/.test(v);
}

/**
 * `eth_distributePrivateTransaction(signedPrivateTx, {privateFor, privateFrom?})`: checks the
 * private transaction as `eth_sendRawPrivateTransaction` would (all but its nonce, which the
 * marker's decides) and keeps it; answers the key a marker's data must carry. The key is SHA3-512
 * over fresh random bytes and the transaction, so it says nothing about it.
 */
export function distributePrivateTransaction(
  kv: Tx,
  raw: unknown,
  args: unknown,
  bound: ReadonlySet<string>,
  keys: Set<string>,
  owner: string,
  random: EvmRandom,
): string {
  const checked = checkPrivate(kv, raw, args, bound, keys);
  const key = createHash("sha3-512")
    .update(random.randomBytes(32))
    .update(hexToBytes(checked.hash as `0x${string}`))
    .digest();
  const record: Distributed = { raw: checked.raw, args, owner };
  kv.map(PRIVATE_MAPS.distributed).set(key, encoder.encode(JSON.stringify(record)));
  return bytesToHex(key);
}

/** Whether a raw public transaction is addressed to the privacy precompile (cheap, no signature check). */
export function isMarker(kv: Tx, raw: unknown): boolean {
  // Fast path for every other send: the RLP of the precompile as `to` must appear in the bytes.
  if (typeof raw !== "string" || !raw.toLowerCase().includes(MARKER_TO_RLP)) return false;
  try {
    return decodeRawTx(raw, readEvmConfig(kv).chainId).to?.toString() === PRIVACY_PRECOMPILE;
  } catch {
    return false;
  }
}

/**
 * Runs a privacy marker transaction: the private transaction its data names must have been
 * distributed by the same Coco user and signed by the marker's own sender, with the marker's nonce
 * (the public nonce is spent once, by the marker).
 */
export async function sendPrivacyMarker(
  kv: Tx,
  raw: unknown,
  bound: ReadonlySet<string>,
  keys: Set<string>,
  owner: string,
  now: () => number,
  random: EvmRandom,
): Promise<string> {
  const config = readEvmConfig(kv);
  const marker = decodeRawTx(raw, config.chainId);
  const hash = bytesToHex(marker.hash());
  const from = marker.getSenderAddress();
  const fromHex = from.toString();
  if (!bound.has(fromHex)) {
    throw new RpcError(-32000, `sender ${fromHex} is not an Ethereum account bound to the calling Coco user`);
  }
  const key = bytesToHex(marker.data);
  if (!isKey(key)) {
    throw new RpcError(
      -32000,
      "a privacy marker's data must be the key eth_distributePrivateTransaction answered",
    );
  }
  const stored = kv.map(PRIVATE_MAPS.distributed).get(marker.data);
  const distributed = stored === undefined ? undefined : (JSON.parse(decoder.decode(stored)) as Distributed);
  if (distributed === undefined || distributed.owner !== owner) {
    throw new RpcError(-32000, "the marker names no private transaction this user distributed");
  }
  if (marker.value !== 0n) throw new RpcError(-32000, "a privacy marker transfers no value");
  // Checked again: the state may have moved since it was distributed.
  const checked = checkPrivate(kv, distributed.raw, distributed.args, bound, keys);
  if (checked.fromHex !== fromHex) {
    throw new RpcError(-32000, "the marker and its private transaction must have the same sender");
  }
  if (checked.tx.nonce !== marker.nonce) {
    throw new RpcError(-32000, "the marker and its private transaction must have the same nonce");
  }
  checkPublicNonce(kv, from, marker.nonce);
  await runPrivate(
    kv,
    checked,
    {
      kind: "marker",
      hash,
      raw: raw as string,
      record: (block): StoredTx => ({
        hash,
        raw: raw as string,
        from: fromHex,
        to: PRIVACY_PRECOMPILE,
        type: hex(marker.type),
        nonce: hex(marker.nonce),
        blockNumber: block.number,
        blockHash: block.hash,
        status: "0x1",
        gasUsed: "0x0",
        effectiveGasPrice: "0x0",
        contractAddress: null,
        logs: [],
        logsBloom: block.logsBloom,
        json: marker.toJSON() as Record<string, unknown>,
        output: "0x",
      }),
    },
    now,
    random,
  );
  const link: MarkerLink = { privateHash: checked.hash, group: checked.group };
  kv.map(PRIVATE_MAPS.markers).set(marker.hash(), encoder.encode(JSON.stringify(link)));
  kv.map(PRIVATE_MAPS.distributed).delete(marker.data);
  return hash;
}

/** The private transaction a marker ran, when the caller is one of its parties. */
export function markedPrivateHash(kv: Tx, markerHash: unknown, keys: Set<string>): string | undefined {
  if (typeof markerHash !== "string" || !/^0x[0-9a-fA-F]{64}$/.test(markerHash)) {
    throw new RpcError(-32602, "invalid params: expected a transaction hash");
  }
  const raw = kv.map(PRIVATE_MAPS.markers).get(hexToBytes(markerHash as `0x${string}`));
  if (raw === undefined) return undefined;
  const link = JSON.parse(decoder.decode(raw)) as MarkerLink;
  return isParty(kv, link.group, keys) ? link.privateHash : undefined;
}
