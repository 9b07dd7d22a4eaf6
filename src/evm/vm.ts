import { createBlock, paramsBlock } from "@ethereumjs/block";
import { type Common, createCustomCommon, Hardfork, Mainnet, type ParamsDict } from "@ethereumjs/common";
import { EVMError, type PrecompileInput, paramsEVM } from "@ethereumjs/evm";
import { paramsTx } from "@ethereumjs/tx";
import { bytesToBigInt, createZeroAddress, hexToBytes } from "@ethereumjs/util";
import { createVM, paramsVM, type VM } from "@ethereumjs/vm";
import type { Tx } from "../kv/index.ts";
import { blockByNumber } from "./chain.ts";
import type { EvmConfig } from "./config.ts";
import { CUSTOM_CRYPTO } from "./crypto.ts";
import { installFastPath } from "./fast/index.ts";
import "./jumps.ts";
import { KvStateManager } from "./state.ts";

/** The hardfork Coco's EVM follows; compile contracts for it (solc `evmVersion: "prague"`). */
export const HARDFORK = Hardfork.Prague;

/** Where the random-bytes precompile answers (see docs/ethereum.md for its Solidity interface). */
export const RANDOM_PRECOMPILE = "0x000000000000000000000000000000000000c0c0";
/** At most this many bytes per call. */
export const RANDOM_MAX_BYTES = 1024n;

const commons = new Map<bigint, Common>();

/** A Common of its own for a VM (copying one costs about 0.5 ms: VMs are pooled). */
export function commonFor(chainId: bigint): Common {
  return sharedCommonFor(chainId).copy();
}

/** The cached Common, shared: only for what never changes it (decoding transactions). */
export function sharedCommonFor(chainId: bigint): Common {
  let common = commons.get(chainId);
  if (!common) {
    common = createCustomCommon({ name: "coco", chainId: chainId.toString() }, Mainnet, {
      hardfork: HARDFORK,
      customCrypto: CUSTOM_CRYPTO,
    });
    settleParams(common);
    fastEipLookup(common);
    commons.set(chainId, common);
  }
  return common;
}

/** The parameter sets ethereumjs merges into a Common each time it builds a transaction, block, VM or EVM. */
const SETTLED: ParamsDict[] = [paramsTx, paramsBlock, paramsVM, paramsEVM];

/**
 * Merges every parameter set ethereumjs uses into `common` once, and makes merging one of those
 * same sets again a no-op. ethereumjs copies the Common and re-merges its parameter set (a deep
 * copy through JSON, then a rebuild of the parameter cache) for every transaction decoded and
 * every block built: about a third of a transfer's decode time. Copies share the settled
 * parameters (`copy()` is shallow, and the override is an own property, so copies keep it).
 */
function settleParams(common: Common): void {
  for (const params of SETTLED) common.updateParams(params);
  const merge = common.updateParams;
  common.updateParams = function (this: Common, params: ParamsDict) {
    if (SETTLED.includes(params)) return;
    merge.call(this, params);
  };
}

/** Per activated-EIP list (ethereumjs rebuilds the list, never edits it): the same EIPs as a set. */
const eipSets = new WeakMap<readonly number[], ReadonlySet<number>>();

/**
 * `isActivatedEIP` is asked several times for every opcode the interpreter steps through, and
 * ethereumjs answers by scanning the list of activated EIPs (about 80): a set answers the same.
 * The list is read through `this` each time, so a hardfork change (which builds a new list) and
 * copies of the Common (which share the list until they change theirs) stay correct.
 */
function fastEipLookup(common: Common): void {
  common.isActivatedEIP = function (this: Common, eip: number): boolean {
    const list = (this as unknown as { _activatedEIPsCache: number[] })._activatedEIPsCache;
    let set = eipSets.get(list);
    if (!set) {
      set = new Set(list);
      eipSets.set(list, set);
    }
    return set.has(eip);
  };
}

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
