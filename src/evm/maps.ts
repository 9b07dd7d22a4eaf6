/**
 * The KV maps the EVM keeps. Everything but the configuration is private: encrypted in the
 * ledger with the ledger secret, like every private write, and readable only inside the nodes.
 */
export const EVM_MAPS = {
  /** address (20 bytes) -> RLP account (nonce, balance, storage root unused, code hash). */
  accounts: "coco.evm.accounts",
  /** code hash (32 bytes) -> contract code. */
  code: "coco.evm.code",
  /** address (20 bytes) || slot (32 bytes) -> value without leading zeros (absent = zero). */
  storage: "coco.evm.storage",
  /** transaction hash (32 bytes) -> JSON record of the transaction and its receipt. */
  txs: "coco.evm.txs",
  /** block number (8 bytes, big-endian) -> JSON block. */
  blocks: "coco.evm.blocks",
  /** block hash (32 bytes) -> block number (8 bytes). */
  blockHashes: "coco.evm.block_hashes",
  /** "head" -> the latest block number (8 bytes). */
  head: "coco.evm.head",
  /** Governance's settings (chain id, gas price, block gas limit), written by `set_evm_config`. */
  config: "public:coco.evm.config",
} as const;

export function u64Key(n: bigint | number): Uint8Array {
  const out = new Uint8Array(8);
  new DataView(out.buffer).setBigUint64(0, BigInt(n));
  return out;
}

export function readU64(bytes: Uint8Array): bigint {
  return new DataView(bytes.buffer, bytes.byteOffset, 8).getBigUint64(0);
}
