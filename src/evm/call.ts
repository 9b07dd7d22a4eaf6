import { createTx, type TypedTransaction } from "@ethereumjs/tx";
import {
  type Address,
  bytesToHex,
  createAddressFromString,
  createZeroAddress,
  hexToBytes,
} from "@ethereumjs/util";
import { runTx } from "@ethereumjs/vm";
import type { Tx } from "../kv/index.ts";
import { blockByNumber, headNumber } from "./chain.ts";
import { type EvmConfig, readEvmConfig } from "./config.ts";
import { RpcError } from "./errors.ts";
import type { KvStateManager } from "./state.ts";
import { blockFor, type EvmRandom, vmOver } from "./vm.ts";

/**
 * The state a call runs over: a private contract's group (src/evm/private), or undefined for the
 * public state (a pooled VM's own state manager).
 */
/** The state a call runs over; `from` is the call's sender (a private state lets it spend gas). */
export type StateFor = (kv: Tx, from: Address) => KvStateManager | undefined;
const publicState: StateFor = () => undefined;

/** The fields of an `eth_call` / `eth_estimateGas` request object that Coco reads. */
export interface CallRequest {
  from?: string;
  to?: string | null;
  gas?: string;
  value?: string;
  data?: string;
  input?: string;
}

/**
 * Resolves who a call runs as. Confidentiality: a call may not impersonate; `from` counts only
 * when it is an account bound to the calling user, and otherwise the call runs from address zero,
 * so a contract's `msg.sender` checks see no one (see docs/ethereum.md).
 */
export function callSender(from: unknown, bound: ReadonlySet<string>): Address {
  if (typeof from === "string" && bound.has(from.toLowerCase())) return createAddressFromString(from);
  return createZeroAddress();
}

function quantity(value: unknown, name: string): bigint | undefined {
  if (value === undefined || value === null) return undefined;
  if (typeof value !== "string" || !/^0x[0-9a-fA-F]{1,64}$/.test(value)) {
    throw new RpcError(-32602, `invalid params: ${name} must be a hex quantity`);
  }
  return BigInt(value);
}

function parseCall(request: unknown): { to?: Address; data: Uint8Array; value: bigint; gas?: bigint } {
  if (typeof request !== "object" || request === null || Array.isArray(request)) {
    throw new RpcError(-32602, "invalid params: expected a call object");
  }
  const r = request as CallRequest;
  const dataHex = r.input ?? r.data ?? "0x";
  if (typeof dataHex !== "string" || !/^0x([0-9a-fA-F]{2})*$/.test(dataHex)) {
    throw new RpcError(-32602, "invalid params: data must be hex bytes");
  }
  if (
    r.to !== undefined &&
    r.to !== null &&
    (typeof r.to !== "string" || !/^0x[0-9a-fA-F]{40}$/.test(r.to))
  ) {
    throw new RpcError(-32602, "invalid params: to must be an address");
  }
  return {
    to: r.to ? createAddressFromString(r.to) : undefined,
    data: hexToBytes(dataHex as `0x${string}`),
    value: quantity(r.value, "value") ?? 0n,
    gas: quantity(r.gas, "gas"),
  };
}

/** One run on a state that is thrown away: nothing reaches the KV. */
async function runOnce(
  kv: Tx,
  config: EvmConfig,
  from: Address,
  call: ReturnType<typeof parseCall>,
  gasLimit: bigint,
  random: EvmRandom,
  timestamp: bigint,
  stateFor: StateFor,
) {
  const { vm, common, release } = await vmOver(kv, config, random, stateFor(kv, from));
  try {
    const unsigned = createTx(
      { to: call.to, data: call.data, value: call.value, gasLimit, gasPrice: config.gasPrice },
      { common },
    );
    // Transactions are frozen: the call's sender is set on an object that inherits from it.
    const tx = Object.create(unsigned, { getSenderAddress: { value: () => from } }) as TypedTransaction;
    const block = blockFor(config, headNumber(kv) + 1n, timestamp, common);
    return await runTx(vm, {
      tx,
      block,
      skipNonce: true,
      skipBalance: true,
      skipBlockGasLimitValidation: true,
      skipHardForkValidation: true,
    }).catch((e: unknown) => {
      throw new RpcError(-32000, (e as Error).message.split(" -> ")[0]!);
    });
  } finally {
    release();
  }
}

function revertError(result: Awaited<ReturnType<typeof runTx>>): RpcError {
  const error = result.execResult.exceptionError!;
  const data = bytesToHex(result.execResult.returnValue);
  if (error.error === "revert") {
    return new RpcError(3, `execution reverted${revertReason(result.execResult.returnValue)}`, data);
  }
  return new RpcError(-32000, error.error, data === "0x" ? undefined : data);
}

/** `Error(string)`'s message, when the revert data is one. */
function revertReason(data: Uint8Array): string {
  if (data.length < 68 || bytesToHex(data.subarray(0, 4)) !== "0x08c379a0") return "";
  const length = Number(BigInt(bytesToHex(data.subarray(36, 68))));
  if (68 + length > data.length) return "";
  return `: ${new TextDecoder().decode(data.subarray(68, 68 + length))}`;
}

/** A call request read once, ready to run at any gas limit (eth_call once, eth_estimateGas many times). */
function prepareCall(
  kv: Tx,
  request: unknown,
  bound: ReadonlySet<string>,
  random: EvmRandom,
  now: () => number,
  stateFor: StateFor,
) {
  const config = readEvmConfig(kv);
  const call = parseCall(request);
  const from = callSender((request as CallRequest).from, bound);
  // The next block's timestamp, as a send now would stamp it: never below its parent's.
  const parent = blockByNumber(kv, headNumber(kv), config.blockGasLimit);
  const clock = BigInt(Math.floor(now() / 1000));
  const timestamp = parent && BigInt(parent.timestamp) > clock ? BigInt(parent.timestamp) : clock;
  return {
    /** The caller's gas limit, or the block's. */
    gas: call.gas ?? config.blockGasLimit,
    timestamp,
    run: (gasLimit: bigint, at = timestamp) =>
      runOnce(kv, config, from, call, gasLimit, random, at, stateFor),
  };
}

export async function ethCall(
  kv: Tx,
  request: unknown,
  bound: ReadonlySet<string>,
  random: EvmRandom,
  now: () => number,
  stateFor: StateFor = publicState,
): Promise<string> {
  const call = prepareCall(kv, request, bound, random, now, stateFor);
  const result = await call.run(call.gas);
  if (result.execResult.exceptionError) throw revertError(result);
  return bytesToHex(result.execResult.returnValue);
}

/**
 * The least gas limit (within 1.5%) at which the call succeeds, found by bisection: gas used
 * alone is too little when refunds or the 63/64 rule of nested calls apply.
 *
 * The transaction runs a moment after the estimate, often in a later second (its block is
 * stamped when it runs), and gas can depend on that: storing `block.timestamp` over the same
 * value is a cheap no-op SSTORE, over an older one a full write. So the limit must also suffice
 * one second on (any later second compares with stored timestamps as that one does), unless the
 * call fails then at any gas (a deadline passing), when only now counts.
 */
export async function estimateGas(
  kv: Tx,
  request: unknown,
  bound: ReadonlySet<string>,
  random: EvmRandom,
  now: () => number,
  stateFor: StateFor = publicState,
): Promise<string> {
  const call = prepareCall(kv, request, bound, random, now, stateFor);
  let hi = call.gas;
  const first = await call.run(hi);
  if (first.execResult.exceptionError) throw revertError(first);
  const next = call.timestamp + 1n;
  const later = await call.run(hi, next).catch(() => undefined);
  const laterCounts = later !== undefined && later.execResult.exceptionError === undefined;
  const spent =
    laterCounts && later.totalGasSpent > first.totalGasSpent ? later.totalGasSpent : first.totalGasSpent;
  let lo = spent - 1n;
  const succeeds = async (gas: bigint, at: bigint) => {
    try {
      return (await call.run(gas, at)).execResult.exceptionError === undefined;
    } catch {
      return false;
    }
  };
  const ok = async (gas: bigint) =>
    (await succeeds(gas, call.timestamp)) && (!laterCounts || (await succeeds(gas, next)));
  const guess = (spent * 64n) / 63n + 3000n;
  if (guess < hi) {
    if (await ok(guess)) hi = guess;
    else lo = guess;
  }
  while (hi - lo > 1n && (hi - lo) * 1000n > hi * 15n) {
    const mid = (lo + hi) / 2n;
    if (await ok(mid)) hi = mid;
    else lo = mid;
  }
  return `0x${hi.toString(16)}`;
}
