import { createTx, type TypedTransaction } from "@ethereumjs/tx";
import { Account, type Address, bytesToHex, createAddressFromString, setLengthLeft } from "@ethereumjs/util";
import { runTx } from "@ethereumjs/vm";
import { readEvmConfig } from "../../src/evm/config.ts";
import { setFastPath } from "../../src/evm/fast/index.ts";
import { blockFor, vmOver } from "../../src/evm/vm.ts";
import { Store, type Tx } from "../../src/kv/index.ts";

/**
 * Runs the same message call over the same state twice, once with the fast interpreter in
 * front of ethereumjs and once with ethereumjs alone, and reports everything observable: the
 * outcome (status, return or revert data, gas used, refund, logs, bloom) and every write the
 * call leaves in the KV transaction (accounts, code, storage), byte for byte.
 */

const random = { randomBytes: (n: number) => new Uint8Array(n).fill(7) };
export const SENDER = createAddressFromString("0x00000000000000000000000000000000000000c1");

export interface Contract {
  address: Address;
  code: Uint8Array;
  /** Slots set before the call (slot number -> value): EIP-2200's "original" values. */
  storage?: Record<number, bigint>;
}

/** A store holding the sender (with ether) and the contracts. */
export async function stateWith(contracts: Contract[]): Promise<Store> {
  const store = new Store();
  const kv = store.begin();
  const lease = await vmOver(kv, readEvmConfig(kv), random);
  try {
    await lease.state.putAccount(SENDER, new Account(0n, 10n ** 20n));
    for (const c of contracts) {
      await lease.state.putCode(c.address, c.code);
      for (const [slot, value] of Object.entries(c.storage ?? {})) {
        const bytes = value === 0n ? new Uint8Array(0) : setLengthLeft(hexBytes(value), 32);
        await lease.state.putStorage(c.address, setLengthLeft(hexBytes(BigInt(slot)), 32), bytes);
      }
    }
    lease.state.flush();
  } finally {
    lease.release();
  }
  if (!store.commit(kv).ok) throw new Error("setup did not commit");
  return store;
}

function hexBytes(v: bigint): Uint8Array {
  const hex = v.toString(16);
  return Uint8Array.from(Buffer.from(hex.length % 2 ? `0${hex}` : hex, "hex"));
}

export interface Call {
  to: Address;
  data: Uint8Array;
  value: bigint;
  gasLimit: bigint;
}

/** One run's observable result (JSON-comparable). */
export interface Observed {
  thrown?: string;
  status?: string;
  returnValue?: string;
  totalGasSpent?: string;
  gasRefund?: string;
  executionGasUsed?: string;
  logs?: string[][];
  bloom?: string;
  writes: Array<[string, Array<[string, string | null]>]>;
}

export async function runCall(store: Store, call: Call, fast: boolean): Promise<Observed> {
  setFastPath(fast);
  const kv = store.begin();
  try {
    return await observe(kv, call);
  } finally {
    setFastPath(true);
    kv.abandon();
  }
}

async function observe(kv: Tx, call: Call): Promise<Observed> {
  const config = readEvmConfig(kv);
  const { vm, state, common, release } = await vmOver(kv, config, random);
  try {
    const unsigned = createTx({ ...call, gasPrice: 0n }, { common });
    const tx = Object.create(unsigned, { getSenderAddress: { value: () => SENDER } }) as TypedTransaction;
    const block = blockFor(config, 5n, 1_700_000_000n, common);
    let result: Awaited<ReturnType<typeof runTx>>;
    try {
      result = await runTx(vm, { tx, block, skipNonce: true, skipHardForkValidation: true });
    } catch (e) {
      return { thrown: (e as Error).message, writes: [] };
    }
    state.flush();
    const ex = result.execResult;
    return {
      status: ex.exceptionError?.error ?? "ok",
      returnValue: bytesToHex(ex.returnValue),
      totalGasSpent: result.totalGasSpent.toString(),
      gasRefund: result.gasRefund.toString(),
      executionGasUsed: ex.executionGasUsed.toString(),
      logs: (ex.logs ?? []).map(([a, topics, data]) => [
        bytesToHex(a),
        ...topics.map((t) => bytesToHex(t)),
        bytesToHex(data),
      ]),
      bloom: bytesToHex(result.bloom.bitvector),
      writes: writesOf(kv),
    };
  } finally {
    release();
  }
}

/** The KV transaction's write set, as hex. */
export function writesOf(kv: Tx): Observed["writes"] {
  return kv
    .writeSet()
    .map((m) => [
      m.name,
      m.updates.map(
        (u) => [bytesToHex(u.key), u.value === null ? null : bytesToHex(u.value)] as [string, string | null],
      ),
    ]);
}
