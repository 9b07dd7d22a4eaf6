import type { Tx } from "../kv/index.ts";
import { EVM_MAPS } from "./maps.ts";

/** What governance decides about the chain (`set_evm_config`); defaults until it has. */
export interface EvmConfig {
  chainId: bigint;
  /** The base fee of every block, in wei: 0 lets transactions with a zero gas price through. */
  gasPrice: bigint;
  blockGasLimit: bigint;
}

export const DEFAULT_EVM_CONFIG: EvmConfig = {
  chainId: 0xc0c0n,
  gasPrice: 0n,
  blockGasLimit: 30_000_000n,
};

const KEY = new TextEncoder().encode("config");
const decoder = new TextDecoder();

/** Reads the configuration; a malformed record (governance validates, so never) reads as default. */
export function readEvmConfig(tx: Tx): EvmConfig {
  const raw = tx.map(EVM_MAPS.config).get(KEY);
  if (raw === undefined) return DEFAULT_EVM_CONFIG;
  const value = JSON.parse(decoder.decode(raw)) as Record<string, unknown>;
  const int = (v: unknown, fallback: bigint): bigint =>
    typeof v === "number" || (typeof v === "string" && /^(0x[0-9a-fA-F]+|[0-9]+)$/.test(v))
      ? BigInt(v)
      : fallback;
  return {
    chainId: int(value.chain_id, DEFAULT_EVM_CONFIG.chainId),
    gasPrice: int(value.gas_price, DEFAULT_EVM_CONFIG.gasPrice),
    blockGasLimit: int(value.block_gas_limit, DEFAULT_EVM_CONFIG.blockGasLimit),
  };
}
