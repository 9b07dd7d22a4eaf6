import { RLP } from "@ethereumjs/rlp";
import { createTxFromRLP } from "@ethereumjs/tx";
import { bytesToBigInt, bytesToHex, hexToBytes } from "@ethereumjs/util";
import { Bloom } from "@ethereumjs/vm";
import type { Tx } from "../kv/index.ts";
import { sharedCommonFor } from "./common.ts";
import { toHex } from "./hex.ts";
import { keccak256 } from "./keccak.ts";
import { EVM_MAPS } from "./maps.ts";

/** A block as the KV stores it (see src/evm/chain.ts: one block per Ethereum transaction). */
export interface StoredBlock {
  number: string;
  hash: string;
  parentHash: string;
  /** Seconds; never below the parent's (the primary's clock, held monotonic). */
  timestamp: string;
  gasLimit: string;
  gasUsed: string;
  baseFeePerGas: string;
  logsBloom: string;
  transactions: string[];
}

export interface StoredLog {
  address: string;
  topics: string[];
  data: string;
  logIndex: string;
}

/** What Coco keeps of one Ethereum transaction: the signed bytes, who sent it, and its receipt. */
export interface StoredTx {
  hash: string;
  raw: string;
  from: string;
  to: string | null;
  type: string;
  nonce: string;
  blockNumber: string;
  blockHash: string;
  status: "0x0" | "0x1";
  gasUsed: string;
  effectiveGasPrice: string;
  contractAddress: string | null;
  logs: StoredLog[];
  logsBloom: string;
  /** The signed transaction's fields, as `eth_getTransactionByHash` shows them. */
  json: Record<string, unknown>;
  /** The revert data of a failed transaction (hex), for tools that replay it. */
  output: string;
  /**
   * A private transaction (src/evm/private): its privacy group, and whether the caller reading it
   * is a party (set when read, never trusted from storage). Non-parties see nothing of it.
   */
  privacy?: { group: string; party: boolean };
}

/**
 * A record as stored. A public transaction's record leaves out what its other fields determine:
 * `json` (the signed transaction's fields, decoded again from `raw`) and `logsBloom` (the bloom of
 * its logs), about 1.1 KB of its 2.2; `getTx` derives them when read. Records of private
 * transactions (a `json` with another `v`, a bloom of their own) and records written before
 * session 10 keep both, and are read as stored.
 */
export type StoredTxRecord = Omit<StoredTx, "json" | "logsBloom"> &
  Partial<Pick<StoredTx, "json" | "logsBloom">>;

const encoder = new TextEncoder();
const decoder = new TextDecoder();

export function putTx(tx: Tx, record: StoredTxRecord): void {
  tx.map(EVM_MAPS.txs).set(hexToBytes(record.hash as `0x${string}`), encoder.encode(JSON.stringify(record)));
}

export function getTx(tx: Tx, hash: string): StoredTx | undefined {
  const raw = tx.map(EVM_MAPS.txs).get(hexToBytes(hash as `0x${string}`));
  if (raw === undefined) return undefined;
  const record = JSON.parse(decoder.decode(raw)) as StoredTxRecord;
  // Derived only when asked (a receipt needs the bloom, never the JSON), then kept.
  if (record.logsBloom === undefined) lazy(record, "logsBloom", () => logsBloom(record.logs));
  if (record.json === undefined) lazy(record, "json", () => signedTxJson(record.raw));
  return record as StoredTx;
}

function lazy<K extends "json" | "logsBloom">(
  record: StoredTxRecord,
  key: K,
  derive: () => StoredTx[K],
): void {
  Object.defineProperty(record, key, {
    enumerable: true,
    configurable: true,
    get() {
      const value = derive();
      Object.defineProperty(record, key, { value, enumerable: true, configurable: true, writable: true });
      return value;
    },
  });
}

/** The bloom of `logs` (each log's address and topics), as receipts and blocks carry it. */
export function logsBloom(logs: StoredLog[]): string {
  const bloom = new Bloom(undefined, { customCrypto: { keccak256 } } as never);
  for (const log of logs) {
    bloom.add(hexToBytes(log.address as `0x${string}`));
    for (const topic of log.topics) bloom.add(hexToBytes(topic as `0x${string}`));
  }
  return toHex(bloom.bitvector);
}

/**
 * The fields of a signed transaction as `toJSON` shows them, decoded from its bytes for the chain
 * it was signed for (its own chain id: governance may have changed the network's since).
 */
export function signedTxJson(raw: string): Record<string, unknown> {
  const bytes = hexToBytes(raw as `0x${string}`);
  // Only EIP-155 legacy transactions are accepted: v = 2 * chain id + 35 or 36.
  const chainId =
    bytes[0]! >= 0xc0
      ? (bytesToBigInt((RLP.decode(bytes) as Uint8Array[])[6]!) - 35n) / 2n
      : bytesToBigInt((RLP.decode(bytes.subarray(1)) as Uint8Array[])[0]!);
  return createTxFromRLP(bytes, { common: sharedCommonFor(chainId) }).toJSON() as Record<string, unknown>;
}

/** The seqno of the Coco transaction that recorded `hash` (its record is written only once). */
export function seqnoOfTx(tx: Tx, hash: string): number | undefined {
  return tx.map(EVM_MAPS.txs).getVersionOfPreviousWrite(hexToBytes(hash as `0x${string}`));
}

/** A receipt as `eth_getTransactionReceipt` answers (one transaction per block: index 0). */
export function receiptJson(r: StoredTx) {
  return {
    transactionHash: r.hash,
    transactionIndex: "0x0",
    blockHash: r.blockHash,
    blockNumber: r.blockNumber,
    from: r.from,
    to: r.to,
    cumulativeGasUsed: r.gasUsed,
    gasUsed: r.gasUsed,
    effectiveGasPrice: r.effectiveGasPrice,
    contractAddress: r.contractAddress,
    logs: r.logs.map((l) => logJson(r, l)),
    logsBloom: r.logsBloom,
    status: r.status,
    type: r.type,
  };
}

export function logJson(r: StoredTx, l: StoredLog) {
  return {
    address: l.address,
    topics: l.topics,
    data: l.data,
    logIndex: l.logIndex,
    blockNumber: r.blockNumber,
    blockHash: r.blockHash,
    transactionHash: r.hash,
    transactionIndex: "0x0",
    removed: false,
  };
}

export function blockJson(block: StoredBlock, transactions: unknown[]) {
  const zero = `0x${"00".repeat(32)}`;
  return {
    number: block.number,
    hash: block.hash,
    parentHash: block.parentHash,
    nonce: "0x0000000000000000",
    sha3Uncles: "0x1dcc4de8dec75d7aab85b567b6ccd41ad312451b948a7413f0a142fd40d49347",
    logsBloom: block.logsBloom,
    transactionsRoot: zero,
    stateRoot: zero,
    receiptsRoot: zero,
    miner: `0x${"00".repeat(20)}`,
    difficulty: "0x0",
    totalDifficulty: "0x0",
    extraData: "0x",
    size: "0x0",
    gasLimit: block.gasLimit,
    gasUsed: block.gasUsed,
    timestamp: block.timestamp,
    baseFeePerGas: block.baseFeePerGas,
    mixHash: zero,
    withdrawals: [],
    withdrawalsRoot: zero,
    blobGasUsed: "0x0",
    excessBlobGas: "0x0",
    uncles: [],
    transactions,
  };
}

export { bytesToHex };
