import type { Common } from "@ethereumjs/common";
import { EVMError } from "@ethereumjs/evm";
import { type Address, bigIntToBytes, unprefixedHexToBytes } from "@ethereumjs/util";
import { toHex } from "../hex.ts";
import { KvStateManager } from "../state.ts";
import { big, storageHost } from "./host.ts";
import { type Frame, type FrameHost, type Outcome, runFrame } from "./interpreter.ts";
import { Fallback } from "./memory.ts";
import { fastPathOn, fastPathStats } from "./switch.ts";
import { feeTable, gasParams } from "./table.ts";

/**
 * A synchronous interpreter for the common frames (src/evm/fast/interpreter.ts), put in front of
 * ethereumjs's: a message call into existing code whose instructions it implements runs there, in
 * one synchronous loop, where ethereumjs awaits every opcode. Anything else, and any frame that
 * meets something it leaves out, runs in ethereumjs as before (see docs/ethereum.md).
 */

export { fastPathOn, fastPathStats, fastTxPathOn, setFastPath, setFastTxPath } from "./switch.ts";
export { type BlockContext, type PlainTxResult, runPlainTx } from "./tx.ts";

interface MessageLike {
  to?: Address;
  caller?: Address;
  value?: bigint;
  data?: Uint8Array;
  code?: Uint8Array | unknown;
  isStatic?: boolean;
  isCreate?: boolean;
  gasLimit: bigint;
  gasRefund: bigint;
  selfdestruct?: Map<string, unknown>;
  createdAddresses?: Set<string>;
  accessWitness?: unknown;
}

interface EvmLike {
  runInterpreter(message: MessageLike, opts?: { pc?: number; initialLogs?: unknown }): Promise<unknown>;
  stateManager: unknown;
  journal: {
    isWarmedStorage(address: Uint8Array, slot: Uint8Array): boolean;
    addWarmedStorage(address: Uint8Array, slot: Uint8Array): void;
  };
  common: Common;
  _opcodeMap: Record<number, { opcodeInfo: { code: number; name: string; fee: number } } | undefined>;
  _block?: { header: { number: bigint; timestamp: bigint } };
  _tx?: { gasPrice: bigint; origin?: Address };
  events: { listenerCount(event: string): number };
  DEBUG: boolean;
}

const MAX_GAS = BigInt(Number.MAX_SAFE_INTEGER);

/** Puts the fast path in front of `evm`'s interpreter (once per EVM). */
export function installFastPath(evmInstance: unknown): void {
  const evm = evmInstance as EvmLike;
  const original = evm.runInterpreter;
  evm.runInterpreter = async function (this: EvmLike, message, opts = {}) {
    const prepared = fastPathOn() ? prepare(this, message, opts) : undefined;
    if (prepared) {
      try {
        const outcome = runFrame(prepared.frame);
        fastPathStats.fast++;
        return finish(this, message, prepared, outcome);
      } catch (e) {
        if (!(e instanceof Fallback)) throw e;
        fastPathStats.fallbacks.set(e.reason, (fastPathStats.fallbacks.get(e.reason) ?? 0) + 1);
      }
    }
    return original.call(this, message, opts);
  };
}

interface Prepared {
  frame: Frame;
  state: KvStateManager;
  address: Address;
  addressHex: string;
}

/** The frame to run fast, or undefined for what only ethereumjs runs. */
function prepare(evm: EvmLike, message: MessageLike, opts: { pc?: number; initialLogs?: unknown }) {
  const { code, to } = message;
  if (message.isCreate || !to || !(code instanceof Uint8Array) || code.length === 0) return undefined;
  if (opts.pc !== undefined || opts.initialLogs !== undefined || message.accessWitness !== undefined)
    return undefined;
  if (evm.DEBUG || evm.events.listenerCount("step") > 0) return undefined;
  // What this reads of ethereumjs's EVM (pinned exactly); if its layout changed, ethereumjs runs.
  if (typeof evm._opcodeMap !== "object" || typeof evm.journal?.isWarmedStorage !== "function")
    return undefined;
  // The exact class: a subclass (a privacy group's state) may guard its writes.
  const state = evm.stateManager;
  if (!(state instanceof KvStateManager) || state.constructor !== KvStateManager) return undefined;
  if (typeof message.gasLimit !== "bigint" || typeof message.gasRefund !== "bigint") return undefined;
  if (message.gasLimit > MAX_GAS || message.gasRefund > MAX_GAS) return undefined;
  const params = gasParams(evm.common);
  if (!params) return undefined;
  const addressHex = toHex(to.bytes);
  const addressBytes = to.bytes;
  const host: FrameHost = {
    ...storageHost(state, to),
    slotWarm: (slot) => evm.journal.isWarmedStorage(addressBytes, unprefixedHexToBytes(slot)),
    origin: () => big((evm._tx?.origin ?? message.caller)?.bytes ?? new Uint8Array(0)),
    gasPrice: () => {
      if (!evm._tx) throw new Fallback("no transaction context");
      return evm._tx.gasPrice;
    },
    chainId: () => evm.common.chainId(),
    blockNumber: () => block(evm).number,
    timestamp: () => block(evm).timestamp,
  };
  const frame: Frame = {
    code,
    data: message.data ?? Uint8Array.from([0]),
    value: message.value ?? 0n,
    caller: big(message.caller?.bytes ?? new Uint8Array(0)),
    address: big(addressBytes),
    addressBytes,
    isStatic: message.isStatic ?? false,
    gasLimit: Number(message.gasLimit),
    refund: Number(message.gasRefund),
    fees: feeTable(evm._opcodeMap),
    params,
    host,
  };
  return { frame, state, address: to, addressHex } satisfies Prepared;
}

function block(evm: EvmLike) {
  if (!evm._block) throw new Fallback("no block context");
  return evm._block.header;
}

/**
 * Applies a frame that succeeded (its slots warmed, its storage writes) and answers what
 * ethereumjs's `runInterpreter` answers. A reverted frame applies nothing: ethereumjs would undo
 * its writes and warm slots at the end of the call anyway.
 */
function finish(evm: EvmLike, message: MessageLike, p: Prepared, out: Outcome) {
  const gasLimit = message.gasLimit;
  const common = {
    gas: BigInt(out.gasLeft),
    executionGasUsed: gasLimit - BigInt(out.gasLeft),
    gasRefund: BigInt(out.refund),
    stateGasSpilled: 0n,
    runState: { gasLeft: BigInt(out.gasLeft), gasRefund: BigInt(out.refund) },
  };
  if (out.reverted) {
    return {
      logs: [],
      selfdestruct: new Map(),
      createdAddresses: new Set(),
      ...common,
      exceptionError: new EVMError(EVMError.errorMessages.REVERT),
      returnValue: out.returnValue ?? new Uint8Array(0),
    };
  }
  const addressBytes = p.address.bytes;
  for (const slot of out.warmed) evm.journal.addWarmedStorage(addressBytes, unprefixedHexToBytes(slot));
  for (const [slot, v] of out.writes) {
    p.state.putSlot(p.addressHex + slot, v === 0n ? new Uint8Array(0) : bigIntToBytes(v));
  }
  return {
    logs: out.logs,
    selfdestruct: message.selfdestruct ?? new Map(),
    ...(message.createdAddresses ? { createdAddresses: message.createdAddresses } : {}),
    ...common,
    exceptionError: undefined,
    returnValue: out.returnValue ?? new Uint8Array(0),
  };
}
