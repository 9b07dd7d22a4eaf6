import { RLP } from "@ethereumjs/rlp";
import { bigIntToUnpaddedBytes, hexToBytes } from "@ethereumjs/util";
import type { Tx } from "../kv/index.ts";
import { toHex } from "./hex.ts";
import { keccak256 } from "./keccak.ts";
import { EVM_MAPS, readU64, u64Key } from "./maps.ts";
import { getTx, type StoredBlock } from "./records.ts";

/**
 * One Ethereum block per Ethereum transaction: each `eth_sendRawTransaction` that runs appends
 * block `head + 1` holding just that transaction, in the same Coco transaction that applies its
 * state. Blocks live in the KV, so every node, and a node after a restart, sees the same chain;
 * numbers grow by one with every committed Ethereum transaction. A block's stored shape is
 * `StoredBlock` (src/evm/records.ts, with the other records).
 */
export type { StoredBlock } from "./records.ts";

const HEAD = new TextEncoder().encode("head");
const encoder = new TextEncoder();
const decoder = new TextDecoder();
const ZERO_HASH = `0x${"00".repeat(32)}`;
const EMPTY_BLOOM = `0x${"00".repeat(256)}`;

export function headNumber(tx: Tx): bigint {
  const raw = tx.map(EVM_MAPS.head).get(HEAD);
  return raw === undefined ? 0n : readU64(raw);
}

/** The genesis block: not stored, the same on every node. */
function genesis(gasLimit: bigint): StoredBlock {
  return seal({
    number: "0x0",
    parentHash: ZERO_HASH,
    timestamp: "0x0",
    gasLimit: hex(gasLimit),
    gasUsed: "0x0",
    baseFeePerGas: "0x0",
    logsBloom: EMPTY_BLOOM,
    transactions: [],
  });
}

export function blockByNumber(tx: Tx, n: bigint, gasLimit: bigint): StoredBlock | undefined {
  if (n === 0n) return genesis(gasLimit);
  const raw = tx.map(EVM_MAPS.blocks).get(u64Key(n));
  if (raw === undefined) return undefined;
  const block = JSON.parse(decoder.decode(raw)) as Omit<StoredBlock, "logsBloom"> & { logsBloom?: string };
  if (block.logsBloom === undefined) {
    // Stored without it (appendBlock's derivedBloom): the union of its transactions' blooms,
    // worked out only when asked (a send reads its parent block for the number and hash alone).
    Object.defineProperty(block, "logsBloom", {
      enumerable: true,
      configurable: true,
      get() {
        const bloom = new Uint8Array(256);
        for (const h of block.transactions) {
          const record = getTx(tx, h);
          if (!record) continue;
          const own = hexToBytes(record.logsBloom as `0x${string}`);
          for (let i = 0; i < bloom.length; i++) bloom[i]! |= own[i]!;
        }
        const value = toHex(bloom);
        Object.defineProperty(block, "logsBloom", {
          value,
          enumerable: true,
          configurable: true,
          writable: true,
        });
        return value;
      },
    });
  }
  return block as StoredBlock;
}

export function blockByHash(tx: Tx, hash: string, gasLimit: bigint): StoredBlock | undefined {
  const g = genesis(gasLimit);
  if (hash.toLowerCase() === g.hash) return g;
  const raw = tx.map(EVM_MAPS.blockHashes).get(hexToBytes(hash as `0x${string}`));
  return raw === undefined ? undefined : blockByNumber(tx, readU64(raw), gasLimit);
}

/** The block hash: keccak-256 of the RLP list of the block's fields (Coco keeps no state trie). */
export function seal(block: Omit<StoredBlock, "hash">): StoredBlock {
  const fields = [
    hexToBytes(block.parentHash as `0x${string}`),
    bigIntToUnpaddedBytes(BigInt(block.number)),
    bigIntToUnpaddedBytes(BigInt(block.timestamp)),
    bigIntToUnpaddedBytes(BigInt(block.gasLimit)),
    bigIntToUnpaddedBytes(BigInt(block.gasUsed)),
    bigIntToUnpaddedBytes(BigInt(block.baseFeePerGas)),
    hexToBytes(block.logsBloom as `0x${string}`),
    block.transactions.map((h) => hexToBytes(h as `0x${string}`)),
  ];
  return { ...block, hash: toHex(keccak256(RLP.encode(fields))) };
}

/**
 * Records `block` as the new head. With `derivedBloom` its bloom is left out of the stored block
 * (0.5 KB of its 0.9): it is the union of its transactions' blooms, which their records give
 * (blockByNumber derives it when read); its hash was sealed over it all the same.
 */
export function appendBlock(tx: Tx, block: StoredBlock, { derivedBloom = false } = {}): void {
  const n = BigInt(block.number);
  const { logsBloom, ...rest } = block;
  const stored = derivedBloom ? rest : block;
  tx.map(EVM_MAPS.blocks).set(u64Key(n), encoder.encode(JSON.stringify(stored)));
  tx.map(EVM_MAPS.blockHashes).set(hexToBytes(block.hash as `0x${string}`), u64Key(n));
  tx.map(EVM_MAPS.head).set(HEAD, u64Key(n));
}

export function hex(n: bigint | number): string {
  return `0x${BigInt(n).toString(16)}`;
}
