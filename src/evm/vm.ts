import { createBlock } from "@ethereumjs/block";
import { type Common, createCustomCommon, Hardfork, Mainnet } from "@ethereumjs/common";
import { EVMError, type PrecompileInput } from "@ethereumjs/evm";
import { bytesToBigInt, createZeroAddress, hexToBytes } from "@ethereumjs/util";
import { createVM, type VM } from "@ethereumjs/vm";
import type { Tx } from "../kv/index.ts";
import { blockByNumber } from "./chain.ts";
import type { EvmConfig } from "./config.ts";
import { KvStateManager } from "./state.ts";

/** The hardfork Coco's EVM follows; compile contracts for it (solc `evmVersion: "prague"`). */
export const HARDFORK = Hardfork.Prague;

/** Where the random-bytes precompile answers (see docs/ethereum.md for its Solidity interface). */
export const RANDOM_PRECOMPILE = "0x000000000000000000000000000000000000c0c0";
/** At most this many bytes per call. */
export const RANDOM_MAX_BYTES = 1024n;

const commons = new Map<bigint, Common>();

export function commonFor(chainId: bigint): Common {
  let common = commons.get(chainId);
  if (!common) {
    common = createCustomCommon({ name: "coco", chainId: chainId.toString() }, Mainnet, {
      hardfork: HARDFORK,
    });
    commons.set(chainId, common);
  }
  return common.copy();
}

/** What the EVM is given from outside the deterministic core: only the primary draws these. */
export interface EvmRandom {
  randomBytes(n: number): Uint8Array;
}

/**
 * A VM over one KV transaction. BLOCKHASH reads Coco's stored blocks; the random precompile
 * draws from the node's randomness (its bytes reach the ledger only through the state they change).
 */
export async function vmOver(
  tx: Tx,
  config: EvmConfig,
  random: EvmRandom,
  state: KvStateManager = new KvStateManager(tx),
): Promise<{ vm: VM; state: KvStateManager; common: Common }> {
  const common = commonFor(config.chainId);
  const blockchain = {
    async getBlock(n: number) {
      const block = blockByNumber(tx, BigInt(n), config.blockGasLimit);
      const hash = block ? hexToBytes(block.hash as `0x${string}`) : new Uint8Array(32);
      return { hash: () => hash };
    },
    async putBlock() {},
    shallowCopy() {
      return blockchain;
    },
  };
  const vm = await createVM({
    common,
    stateManager: state,
    blockchain,
    evmOpts: {
      customPrecompiles: [
        { address: RANDOM_PRECOMPILE, function: (input: PrecompileInput) => randomPrecompile(input, random) },
      ],
    },
  });
  return { vm, state, common };
}

/** Input: a uint256 byte count (at most 1024). Output: that many random bytes. */
function randomPrecompile(input: PrecompileInput, random: EvmRandom) {
  const n = input.data.length === 0 ? 32n : bytesToBigInt(input.data.subarray(0, 32));
  const gasUsed = 100n + 3n * ((n + 31n) / 32n);
  if (n > RANDOM_MAX_BYTES || gasUsed > input.gasLimit) {
    return {
      executionGasUsed: input.gasLimit,
      returnValue: new Uint8Array(0),
      exceptionError: new EVMError(EVMError.errorMessages.OUT_OF_GAS),
    };
  }
  return { executionGasUsed: gasUsed, returnValue: random.randomBytes(Number(n)) };
}

export function blockFor(
  config: EvmConfig,
  number: bigint,
  timestamp: bigint,
  common: Common,
  coinbase = createZeroAddress(),
) {
  return createBlock(
    {
      header: {
        number,
        timestamp,
        gasLimit: config.blockGasLimit,
        baseFeePerGas: config.gasPrice,
        coinbase,
        excessBlobGas: 0n,
        blobGasUsed: 0n,
      },
    },
    { common, skipConsensusFormatValidation: true },
  );
}
