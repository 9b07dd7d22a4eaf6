import { type Address, unprefixedHexToBytes } from "@ethereumjs/util";
import { toBigInt, toHex } from "../hex.ts";
import type { KvStateManager } from "../state.ts";
import type { FrameHost } from "./interpreter.ts";

/** A frame's reads of its account's storage: current values and those before the transaction. */
export function storageHost(state: KvStateManager, to: Address): Pick<FrameHost, "slotNow" | "slotOriginal"> {
  const addressHex = toHex(to.bytes);
  const slotBytes = (slot: string) => () => unprefixedHexToBytes(slot);
  return {
    slotNow: (slot) => big(state.slotNow(to, slotBytes(slot), addressHex + slot)),
    slotOriginal: (slot) => big(state.slotOriginal(to, slotBytes(slot), addressHex + slot)),
  };
}

/** What a transaction's top frame reads of its transaction and block. */
export interface TxContext {
  origin: Address;
  gasPrice: bigint;
  chainId: bigint;
  number: bigint;
  timestamp: bigint;
}

/**
 * The host of a transaction's top frame when no ethereumjs EVM runs it (./tx.ts): storage from
 * `state`, warm slots from the transaction's access list (`warm`), the rest from `context`.
 */
export function frameHostOver(
  state: KvStateManager,
  to: Address,
  warm: (slotHex: string) => boolean,
  context: TxContext,
): FrameHost {
  const origin = big(context.origin.bytes);
  return {
    ...storageHost(state, to),
    slotWarm: warm,
    origin: () => origin,
    gasPrice: () => context.gasPrice,
    chainId: () => context.chainId,
    blockNumber: () => context.number,
    timestamp: () => context.timestamp,
  };
}

export function big(bytes: Uint8Array): bigint {
  return toBigInt(bytes);
}
