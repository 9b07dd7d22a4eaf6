/**
 * The ethereumjs Common (chain id, hardfork, parameters) Coco's EVM runs with: built once per
 * chain id, with ethereumjs's repeated parameter merging and EIP lookups made cheap. Shared by
 * the VMs (src/evm/vm.ts) and by what decodes stored transactions (src/evm/records.ts).
 */
import { paramsBlock } from "@ethereumjs/block";
import { type Common, createCustomCommon, Hardfork, Mainnet, type ParamsDict } from "@ethereumjs/common";
import { paramsEVM } from "@ethereumjs/evm";
import { paramsTx } from "@ethereumjs/tx";
import { paramsVM } from "@ethereumjs/vm";
import { CUSTOM_CRYPTO } from "./crypto.ts";

/** The hardfork Coco's EVM follows; compile contracts for it (solc `evmVersion: "prague"`). */
export const HARDFORK = Hardfork.Prague;

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
