import { createBlock } from "@ethereumjs/block";
import type { Common } from "@ethereumjs/common";
import { EVMError, type PrecompileInput } from "@ethereumjs/evm";
import { bytesToBigInt, createZeroAddress, hexToBytes } from "@ethereumjs/util";
import { createVM, type VM } from "@ethereumjs/vm";
import type { Tx } from "../kv/index.ts";
import { blockByNumber } from "./chain.ts";
import { commonFor } from "./common.ts";
import type { EvmConfig } from "./config.ts";
import { installFastPath } from "./fast/index.ts";
import "./jumps.ts";
import { KvStateManager } from "./state.ts";

/** Where the random-bytes precompile answers (see docs/ethereum.md for its Solidity interface). */
export const RANDOM_PRECOMPILE = "0x000000000000000000000000000000000000c0c0";
/** At most this many bytes per call. */
export const RANDOM_MAX_BYTES = 1024n;

export { commonFor, HARDFORK, sharedCommonFor } from "./common.ts";

/** What the EVM is given from outside the deterministic core: only the primary draws these. */
export interface EvmRandom {
  randomBytes(n: number): Uint8Array;
}

/** A VM, kept between requests, with the KV transaction and randomness of its current use. */
interface PooledVm {
  vm: VM;
  state: KvStateManager;
  common: Common;
  use: { tx?: Tx; random?: EvmRandom; gasLimit: bigint };
}

/** Idle VMs per chain settings (creating one costs about 0.65 ms; a request needs one). */
const pools = new Map<string, PooledVm[]>();
const POOL_MAX = 16;

export interface VmLease {
  vm: VM;
  state: KvStateManager;
  common: Common;
  /** Returns the VM to the pool; unflushed state is forgotten. Call once, when done. */
  release(): void;
}

/**
 * A VM over one KV transaction, from a pool kept per chain settings (a settings change by
 * governance gives new VMs). BLOCKHASH reads Coco's stored blocks; the random precompile draws
 * from the node's randomness (its bytes reach the ledger only through the state they change).
 * With `state` (a privacy group's private state) the VM runs over it instead, and is not pooled.
 * Either way the lease must be released.
 */
export async function vmOver(
  tx: Tx,
  config: EvmConfig,
  random: EvmRandom,
  state?: KvStateManager,
): Promise<VmLease> {
  if (state) return freshVm(tx, config, random, state);
  const key = `${config.chainId}/${config.gasPrice}/${config.blockGasLimit}`;
  const pool = pools.get(key) ?? [];
  pools.set(key, pool);
  const pooled = pool.pop() ?? (await createVm(config, new KvStateManager(undefined as unknown as Tx)));
  pooled.use.tx = tx;
  pooled.use.random = random;
  pooled.state.bind(tx);
  let released = false;
  return {
    vm: pooled.vm,
    state: pooled.state,
    common: pooled.common,
    release() {
      if (released) return;
      released = true;
      pooled.state.discard();
      pooled.use.tx = undefined;
      pooled.use.random = undefined;
      if (pool.length < POOL_MAX) pool.push(pooled);
    },
  };
}

/**
 * A VM over a caller's own state manager (a privacy group's private state): made for this use
 * and never pooled, since the pool's VMs are all over the public maps. Private transactions are
 * rare enough that the VM's creation cost does not matter.
 */
async function freshVm(
  tx: Tx,
  config: EvmConfig,
  random: EvmRandom,
  state: KvStateManager,
): Promise<VmLease> {
  const made = await createVm(config, state);
  made.use.tx = tx;
  made.use.random = random;
  return {
    vm: made.vm,
    state: made.state,
    common: made.common,
    release() {
      made.state.discard();
      made.use.tx = undefined;
      made.use.random = undefined;
    },
  };
}

async function createVm(config: EvmConfig, state: KvStateManager): Promise<PooledVm> {
  const common = commonFor(config.chainId);
  const use: PooledVm["use"] = { gasLimit: config.blockGasLimit };
  const inUse = (): Tx => {
    if (!use.tx) throw new Error("a VM was used after its release");
    return use.tx;
  };
  const blockchain = {
    async getBlock(n: number) {
      const block = blockByNumber(inUse(), BigInt(n), use.gasLimit);
      const hash = block ? hexToBytes(block.hash as `0x${string}`) : new Uint8Array(32);
      return { hash: () => hash };
    },
    async putBlock() {},
    shallowCopy() {
      return blockchain;
    },
  };
  const random: EvmRandom = {
    randomBytes(n) {
      if (!use.random) throw new Error("a VM was used after its release");
      return use.random.randomBytes(n);
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
  installFastPath(vm.evm);
  return { vm, state, common, use };
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
