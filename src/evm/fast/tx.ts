import { type Common, ConsensusType } from "@ethereumjs/common";
import { EVMError } from "@ethereumjs/evm";
import { Capability, type TypedTransaction } from "@ethereumjs/tx";
import {
  Account,
  type Address,
  bigIntMax,
  bigIntMin,
  bigIntToBytes,
  bytesToUnprefixedHex,
  equalsBytes,
  KECCAK256_NULL,
} from "@ethereumjs/util";
import { Bloom, type VM } from "@ethereumjs/vm";
import { toHex } from "../hex.ts";
import { KvStateManager } from "../state.ts";
import { big, frameHostOver } from "./host.ts";
import { type Log, runFrame } from "./interpreter.ts";
import { Fallback } from "./memory.ts";
import { fastPathStats, fastTxPathOn } from "./switch.ts";
import { feeTable, gasParams } from "./table.ts";

/**
 * Whole plain-call transactions without ethereumjs's `runTx` (see docs/ethereum.md, "The fast
 * transaction path"): a signed legacy, EIP-2930 or EIP-1559 transaction that calls existing code
 * or moves value, on the public state. It does `runTx`'s work for such a transaction directly:
 * the same checks, intrinsic gas, upfront debit, the call (its frame in the fast interpreter),
 * refunds, the fee to the coinbase, the nonce, EIP-161's removal of touched empty accounts, and
 * the logs bloom; it leaves the state manager exactly as `runTx` would. Anything else answers
 * `undefined` before any side effect, and the caller runs `runTx` as before: contract creation,
 * a precompile or a delegated (EIP-7702) callee or sender, an invalid transaction (so its error
 * is ethereumjs's own), and any frame the fast interpreter hands back (out of gas, an opcode it
 * leaves to ethereumjs...).
 */

/** What the block gives a transaction: the fast path needs no Block object. */
export interface BlockContext {
  number: bigint;
  timestamp: bigint;
  /** The block's base fee (Coco: the configured gas price). */
  baseFee: bigint;
  gasLimit: bigint;
  coinbase: Address;
}

/** The parts of ethereumjs's `RunTxResult` that Coco's receipts read. */
export interface PlainTxResult {
  totalGasSpent: bigint;
  bloom: Bloom;
  createdAddress?: undefined;
  execResult: {
    exceptionError?: EVMError;
    returnValue: Uint8Array;
    logs: Log[];
  };
}

/** The transaction-level parameters, per Common: null when its rules are not the ones done here. */
interface TxRules {
  txGas: bigint;
  dataZero: bigint;
  dataNonZero: bigint;
  listAddress: bigint;
  listSlot: bigint;
  floorPerToken: bigint;
  refundQuotient: bigint;
}

const rulesByCommon = new WeakMap<Common, TxRules | null>();

/**
 * Prague's transaction rules as ethereumjs implements them: EIP-1559 fees, EIP-2929/2930 access
 * lists, EIP-3529 refunds, EIP-3651 (a warm coinbase: nothing the fast interpreter reads) and
 * EIP-7623's calldata floor. EIPs that change intrinsic gas, accounting or value transfer (and
 * ethereumjs's experimental ones) send every transaction to `runTx`.
 */
function rulesFor(common: Common): TxRules | null {
  const known = rulesByCommon.get(common);
  if (known !== undefined) return known;
  const required = [161, 1559, 2718, 2929, 2930, 3529, 3651, 7623];
  const excluded = [2780, 4762, 6800, 7708, 7778, 7864, 7928, 7976, 7981, 8037, 8038];
  let rules: TxRules | null = null;
  if (
    common.consensusType() !== ConsensusType.ProofOfAuthority &&
    required.every((e) => isActive(common, e)) &&
    !excluded.some((e) => common.isActivatedEIP(e))
  ) {
    rules = {
      txGas: common.param("txGas"),
      dataZero: common.param("txDataZeroGas"),
      dataNonZero: common.param("txDataNonZeroGas"),
      listAddress: common.param("accessListAddressGas"),
      listSlot: common.param("accessListStorageKeyGas"),
      floorPerToken: common.param("totalCostFloorPerToken"),
      refundQuotient: common.param("maxRefundQuotient"),
    };
  }
  rulesByCommon.set(common, rules);
  return rules;
}

/** EIP-161 is Spurious Dragon's (not in ethereumjs's EIP lists); the rest are listed EIPs. */
function isActive(common: Common, eip: number): boolean {
  return eip === 161 ? common.gteHardfork("spuriousDragon") : common.isActivatedEIP(eip);
}

const MAX_U256 = (1n << 256n) - 1n;
const MAX_GAS = BigInt(Number.MAX_SAFE_INTEGER);
const DELEGATION = Uint8Array.of(0xef, 0x01, 0x00);

interface VmLike {
  DEBUG: boolean;
  events: { listenerCount(event: string): number };
  evm: {
    DEBUG: boolean;
    events: { listenerCount(event: string): number };
    _opcodeMap: Parameters<typeof feeTable>[0];
    getPrecompile(address: Address): unknown;
  };
  _opts: { profilerOpts?: { reportAfterTx?: boolean } };
}

function skip(reason: string): undefined {
  fastPathStats.txFallbacks.set(reason, (fastPathStats.txFallbacks.get(reason) ?? 0) + 1);
  return undefined;
}

/**
 * Runs `tx` (from `from`, already recovered) as `runTx(vm, { tx, block })` would, over `state`
 * (the VM's own, with nothing pending), or answers `undefined` having changed nothing.
 */
export function runPlainTx(
  vmInstance: VM,
  state: KvStateManager,
  common: Common,
  tx: TypedTransaction,
  from: Address,
  block: BlockContext,
): PlainTxResult | undefined {
  if (!fastTxPathOn()) return undefined;
  const vm = vmInstance as unknown as VmLike;
  const to = tx.to;
  if (tx.type > 2 || to === undefined || to.bytes.length !== 20) return skip("not a plain call");
  if (vm.DEBUG || vm.evm.DEBUG || vm._opts.profilerOpts?.reportAfterTx === true) return skip("tracing");
  for (const event of ["beforeTx", "afterTx"]) if (vm.events.listenerCount(event) > 0) return skip("tracing");
  for (const event of ["beforeMessage", "afterMessage", "step"])
    if (vm.evm.events.listenerCount(event) > 0) return skip("tracing");
  // The exact class, as for frames: a privacy group's state guards its writes.
  if (!(state instanceof KvStateManager) || state.constructor !== KvStateManager || !state.isPristine())
    return skip("state");
  const rules = rulesFor(common);
  const params = gasParams(common);
  if (!rules || !params) return skip("hardfork");
  if (vm.evm.getPrecompile(to) !== undefined) return skip("precompile");

  // Intrinsic gas and the EIP-7623 floor (runTx's getIntrinsicGas and getCalldataFloorGas).
  // Bytes counted as numbers, priced once (a bigint addition per byte allocates).
  const data = tx.data;
  let zeros = 0;
  for (let i = 0; i < data.length; i++) if (data[i] === 0) zeros++;
  const nonZeros = BigInt(data.length - zeros);
  let dataGas = BigInt(zeros) * rules.dataZero + nonZeros * rules.dataNonZero;
  const tokens = BigInt(zeros) + 4n * nonZeros;
  const warmSlots = new Set<string>();
  if (tx.supports(Capability.EIP2930AccessLists)) {
    const list = (tx as unknown as { accessList: Array<[Uint8Array, Uint8Array[]]> }).accessList;
    let slots = 0n;
    for (const [address, keys] of list) {
      slots += BigInt(keys.length);
      if (equalsBytes(address, to.bytes)) for (const key of keys) warmSlots.add(bytesToUnprefixedHex(key));
    }
    dataGas += BigInt(list.length) * rules.listAddress + slots * rules.listSlot;
  }
  const intrinsic = rules.txGas + dataGas;
  const floor = rules.txGas + rules.floorPerToken * tokens;
  const gasLimit = tx.gasLimit;
  if (gasLimit > block.gasLimit || gasLimit > MAX_GAS) return skip("invalid");
  if (gasLimit < bigIntMax(intrinsic, floor)) return skip("invalid");

  // Fees (EIP-1559), the sender (EIP-3607, balance, nonce).
  const fees = feesOf(tx, block.baseFee);
  if (!fees) return skip("invalid");
  const { gasPrice, inclusionFee, maxCost } = fees;
  const sender = state.accountNow(from) ?? new Account();
  if (!equalsBytes(sender.codeHash, KECCAK256_NULL)) return skip("sender has code");
  const upfront = gasLimit * gasPrice + tx.value;
  if (sender.balance < upfront || sender.balance < maxCost) return skip("invalid");
  if (sender.nonce !== tx.nonce) return skip("invalid");

  // The callee: its code, if any, runs in the fast interpreter; nothing is applied before it ends.
  const callee = state.accountNow(to);
  const code = callee === undefined ? new Uint8Array(0) : state.codeNow(to);
  if (code.length >= 3 && equalsBytes(code.subarray(0, 3), DELEGATION)) return skip("delegated callee");
  if (!equalsBytes(from.bytes, to.bytes) && (callee?.balance ?? 0n) + tx.value > MAX_U256)
    return skip("value overflow");
  const frameGas = gasLimit - intrinsic;
  let executionGasUsed = 0n;
  let refund = 0n;
  let reverted = false;
  let returnValue: Uint8Array = new Uint8Array(0);
  let logs: Log[] = [];
  let writes: Map<string, bigint> | undefined;
  if (code.length > 0) {
    const host = frameHostOver(state, to, (slot) => warmSlots.has(slot), {
      origin: from,
      gasPrice,
      chainId: common.chainId(),
      number: block.number,
      timestamp: block.timestamp,
    });
    let outcome: ReturnType<typeof runFrame>;
    try {
      outcome = runFrame({
        code,
        data: tx.data,
        value: tx.value,
        caller: big(from.bytes),
        address: big(to.bytes),
        addressBytes: to.bytes,
        isStatic: false,
        gasLimit: Number(frameGas),
        refund: 0,
        fees: feeTable(vm.evm._opcodeMap),
        params,
        host,
      });
    } catch (e) {
      if (!(e instanceof Fallback)) throw e;
      fastPathStats.fallbacks.set(e.reason, (fastPathStats.fallbacks.get(e.reason) ?? 0) + 1);
      return skip("frame");
    }
    fastPathStats.fast++;
    executionGasUsed = frameGas - BigInt(outcome.gasLeft);
    reverted = outcome.reverted;
    returnValue = outcome.returnValue ?? returnValue;
    if (!reverted) {
      refund = BigInt(outcome.refund);
      logs = outcome.logs;
      writes = outcome.writes;
    }
  }
  fastPathStats.txs++;

  // Gas: intrinsic plus execution, less the refund (at most a fifth, EIP-3529), at least the floor.
  let totalGasSpent = executionGasUsed + intrinsic;
  if (refund !== 0n) {
    const cap = totalGasSpent / rules.refundQuotient;
    totalGasSpent -= refund < cap ? refund : cap;
  }
  if (totalGasSpent < floor) totalGasSpent = floor;

  // State, in runTx's terms: the sender pays the gas limit up front and its nonce grows; the
  // call moves the value and writes storage unless it reverted; unused gas goes back to the
  // sender and the inclusion fee to the coinbase; touched accounts left empty are removed.
  const accounts = new Map<string, { address: Address; account: Account }>();
  const get = (address: Address): Account => {
    const held = accounts.get(toHex(address.bytes));
    if (held) return held.account;
    const account = state.accountNow(address) ?? new Account();
    accounts.set(toHex(address.bytes), { address, account });
    return account;
  };
  const payer = get(from);
  payer.balance -= gasLimit * gasPrice;
  payer.nonce += 1n;
  if (!reverted) {
    get(from).balance -= tx.value;
    get(to).balance += tx.value;
  }
  get(from).balance += (gasLimit - totalGasSpent) * gasPrice;
  get(block.coinbase).balance += totalGasSpent * inclusionFee;
  for (const { address, account } of accounts.values()) {
    if (account.isEmpty()) state.deleteAccountNow(address);
    else state.putAccountNow(address, account);
  }
  if (writes) {
    const prefix = toHex(to.bytes);
    for (const [slot, v] of writes)
      state.putSlot(prefix + slot, v === 0n ? new Uint8Array(0) : bigIntToBytes(v));
  }

  const bloom = new Bloom(undefined, common);
  for (const [address, topics] of logs) {
    bloom.add(address);
    for (const topic of topics) bloom.add(topic);
  }
  return {
    totalGasSpent,
    bloom,
    execResult: {
      exceptionError: reverted ? new EVMError(EVMError.errorMessages.REVERT) : undefined,
      returnValue,
      logs,
    },
  };
}

/**
 * The price per gas the sender pays, the part of it the coinbase gets (EIP-1559: the rest is the
 * base fee, burnt) and the balance an EIP-1559 sender must hold; undefined when the transaction
 * cannot pay the base fee.
 */
function feesOf(tx: TypedTransaction, baseFee: bigint) {
  if (tx.supports(Capability.EIP1559FeeMarket)) {
    const t = tx as unknown as { maxFeePerGas: bigint; maxPriorityFeePerGas: bigint };
    if (t.maxFeePerGas < baseFee) return undefined;
    const room = t.maxFeePerGas - baseFee;
    const inclusionFee = bigIntMin(t.maxPriorityFeePerGas, room);
    return {
      gasPrice: inclusionFee + baseFee,
      inclusionFee,
      maxCost: tx.value + tx.gasLimit * t.maxFeePerGas,
    };
  }
  const gasPrice = (tx as unknown as { gasPrice: bigint }).gasPrice;
  if (gasPrice < baseFee) return undefined;
  return { gasPrice, inclusionFee: gasPrice - baseFee, maxCost: tx.value };
}
